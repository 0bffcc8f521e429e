// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore

/// A sans-I/O encryptor of Windows EFS data from stream offset 0: feed plaintext in chunks of any size, get the
/// ciphertext of each completed 512-byte unit; ``finish()`` zero-fills the last unit (`windows-efs-metadata.md`
/// §4.5: "The plaintext tail is zero-padded to 512 bytes. Ciphertext length = roundup512(size).")
///
/// ```swift
/// var e = WindowsDataEncryptor(cipher: cipher)
/// var ciphertext = try e.encrypt(plaintext)
/// ciphertext += try e.finish()
/// ```
public struct WindowsDataEncryptor: Sendable {
    let cipher: WindowsDataCipher
    var pending: [UInt8] = []
    /// Plaintext bytes received so far: the stream size once finished.
    public private(set) var size: UInt64 = 0
    var encrypted: UInt64 = 0
    var finished = false

    public init(cipher: WindowsDataCipher) { self.cipher = cipher }

    public mutating func encrypt(_ chunk: some Collection<UInt8>) throws(FormatError) -> [UInt8] {
        precondition(!finished, "encrypt after finish")
        size += UInt64(chunk.count)
        guard size <= Limits.maximumPlaintextSize else { throw FormatError(.limitExceeded, "the stream is too large") }
        pending.append(contentsOf: chunk)
        let whole = pending.count / WindowsEFS.unitSize * WindowsEFS.unitSize
        guard whole > 0 else { return [] }
        let out = try cipher.encrypt(pending[0..<whole], offset: encrypted)
        pending.removeFirst(whole)
        encrypted += UInt64(whole)
        return out
    }

    /// Encrypts the zero-filled last unit, if any.
    public mutating func finish() throws(FormatError) -> [UInt8] {
        precondition(!finished, "finish twice")
        finished = true
        guard !pending.isEmpty else { return [] }
        pending += [UInt8](repeating: 0, count: WindowsEFS.unitSize - pending.count)
        let out = try cipher.encrypt(pending, offset: encrypted)
        pending = []
        return out
    }
}
