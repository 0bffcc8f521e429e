// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore

/// ntfs-3g's `efs_raw` representation of an encrypted stream (`windows-efs-metadata.md` §4.7): the ciphertext,
/// padded to 512 bytes, then 2 bytes holding the LE16 padding length (0–511). Its size is
/// `((size + 511) & ~511) + 2`. The `$EFS` travels separately, in the `system.ntfs_efsinfo` extended attribute.
///
/// ```swift
/// let (ciphertext, size) = try NTFS3GEfsRaw.parse(efsRawBytes)
/// let stored = try NTFS3GEfsRaw.encode(ciphertext: ciphertext, size: size)
/// ```
public enum NTFS3GEfsRaw {
    /// Length of the trailing pad-length field.
    public static let trailerSize = 2

    /// Splits an `efs_raw` file into its ciphertext and the plaintext size.
    ///
    /// - Throws: `.truncated` for fewer than 2 bytes; `.malformed` when the ciphertext is not whole 512-byte units,
    ///   the pad length is above 511, or a pad is given for an empty stream.
    public static func parse(_ bytes: [UInt8]) throws(FormatError) -> (ciphertext: ArraySlice<UInt8>, size: UInt64) {
        guard bytes.count >= trailerSize else { throw .truncated("efs_raw pad length") }
        let cipherLength = bytes.count - trailerSize
        let pad = Int(bytes[cipherLength]) | Int(bytes[cipherLength + 1]) << 8
        try check(cipherLength: UInt64(cipherLength), pad: pad)
        return (bytes[0..<cipherLength], UInt64(cipherLength - pad))
    }

    static func check(cipherLength: UInt64, pad: Int) throws(FormatError) {
        guard cipherLength % UInt64(WindowsEFS.unitSize) == 0 else {
            throw FormatError(
                .malformed, "efs_raw holds \(cipherLength) ciphertext bytes, not a whole number of 512-byte units")
        }
        guard pad < WindowsEFS.unitSize else { throw FormatError(.malformed, "efs_raw pad length \(pad) is above 511") }
        guard cipherLength > 0 || pad == 0 else {
            throw FormatError(.malformed, "efs_raw pad length \(pad) for an empty stream")
        }
    }

    /// Builds an `efs_raw` file from ciphertext (`size` rounded up to 512 bytes) and the plaintext size.
    public static func encode(ciphertext: some Collection<UInt8>, size: UInt64) throws(FormatError) -> [UInt8] {
        guard let rounded = WindowsEFS.roundedToUnit(size), UInt64(ciphertext.count) == rounded else {
            throw FormatError(.malformed, "\(ciphertext.count) ciphertext bytes do not hold \(size) bytes of data")
        }
        return Array(ciphertext) + trailer(size: size)
    }

    /// The 2-byte trailer that follows the ciphertext of a stream of `size` bytes: LE16 of the padding length.
    public static func trailer(size: UInt64) -> [UInt8] {
        let pad = Int((WindowsEFS.roundedToUnit(size) ?? size) - size)
        return [UInt8(truncatingIfNeeded: pad), UInt8(truncatingIfNeeded: pad >> 8)]
    }
}

/// A sans-I/O decryptor of an `efs_raw` file: feed its bytes in chunks of any size, get plaintext back. Because the
/// size is known only from the last 2 bytes, the last unit (and the 2-byte trailer) is held back until
/// ``finish()``, which cuts it.
///
/// ```swift
/// var d = EfsRawDecryptor(cipher: cipher)
/// var plain = try d.decrypt(chunk)
/// plain += try d.finish()
/// ```
public struct EfsRawDecryptor: Sendable {
    let cipher: WindowsDataCipher
    var pending: [UInt8] = []
    /// Ciphertext bytes decrypted so far.
    public private(set) var decrypted: UInt64 = 0

    public init(cipher: WindowsDataCipher) { self.cipher = cipher }

    /// Decrypts every unit that is certainly not the last one.
    public mutating func decrypt(_ chunk: some Collection<UInt8>) throws(FormatError) -> [UInt8] {
        pending.append(contentsOf: chunk)
        let unit = WindowsEFS.unitSize
        // A unit followed by more than the 2-byte trailer is not the last; keep the final unit + trailer back.
        let safe =
            pending.count > unit + NTFS3GEfsRaw.trailerSize
            ? (pending.count - NTFS3GEfsRaw.trailerSize - 1) / unit * unit : 0
        guard safe > 0 else { return [] }
        let plain = try cipher.decrypt(pending[0..<safe], offset: decrypted)
        pending.removeFirst(safe)
        decrypted += UInt64(safe)
        return plain
    }

    /// Decrypts the last unit, cut by the pad length, and checks the trailer.
    ///
    /// - Throws: as ``NTFS3GEfsRaw/parse(_:)``.
    public mutating func finish() throws(FormatError) -> [UInt8] {
        guard pending.count >= NTFS3GEfsRaw.trailerSize else { throw .truncated("efs_raw pad length") }
        let tail = pending.count - NTFS3GEfsRaw.trailerSize
        let pad = Int(pending[tail]) | Int(pending[tail + 1]) << 8
        try NTFS3GEfsRaw.check(cipherLength: decrypted + UInt64(tail), pad: pad)
        var plain = try cipher.decrypt(pending[0..<tail], offset: decrypted)
        decrypted += UInt64(tail)
        pending = []
        guard pad <= plain.count else {
            throw FormatError(.malformed, "efs_raw pad length \(pad) is longer than the last unit")
        }
        plain.removeLast(pad)
        return plain
    }
}
