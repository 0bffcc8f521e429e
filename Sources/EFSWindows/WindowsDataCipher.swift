// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore

/// Encrypts and decrypts Windows EFS file data: independent 512-byte CBC units, each with an IV derived from the
/// unit's byte offset in the stream (`windows-efs-metadata.md` §4.5, ntfsdecrypt `ntfs_fek_decrypt_sector`):
///
/// - AES-256: IV = LE64(0x5816657BE9161312 + offset) ‖ LE64(0x1989ADBE44918961 + offset);
/// - 3DES and DESX: IV = LE64(0x169119629891AD13 + offset).
///
/// The additions wrap modulo 2⁶⁴. No padding: the plaintext's tail is zero-filled to 512 bytes by the writer.
///
/// ```swift
/// let cipher = try WindowsDataCipher(fek: fek)
/// let plain = try cipher.decrypt(ciphertext, offset: 0)
/// ```
public struct WindowsDataCipher: Sendable {
    enum Engine: Sendable {
        case aes(AESCBCKey)
        case tripleDES(TripleDES)
        case desx(DESX)
    }

    let engine: Engine
    public let algorithm: WindowsAlgorithm

    /// - Throws: ``FormatError/Code/unsupportedAlgorithm`` for an algorithm other than AES-256, 3DES and DESX.
    public init(fek: WindowsFEK) throws(FormatError) {
        algorithm = fek.algorithm
        switch fek.algorithm {
        case .aes256: engine = .aes(try AESCBCKey(key: fek.key))
        case .tripleDES: engine = .tripleDES(try TripleDES(key: fek.key))
        case .desx: engine = .desx(try DESX(key: fek.key))
        default: throw FormatError(.unsupportedAlgorithm, "\(fek.algorithm) is not supported yet")
        }
    }

    public var isWeak: Bool { algorithm.isWeak }

    /// The IV of the unit at byte `offset` (§4.5).
    public static func iv(_ algorithm: WindowsAlgorithm, offset: UInt64) -> [UInt8] {
        var w = ByteWriter(capacity: 16)
        if algorithm == .aes256 {
            w.write(WindowsEFS.ivAESLow &+ offset)
            w.write(WindowsEFS.ivAESHigh &+ offset)
        } else {
            w.write(WindowsEFS.ivDES &+ offset)
        }
        return w.bytes
    }

    /// Decrypts whole 512-byte units; the first starts at stream byte `offset` (a multiple of 512).
    ///
    /// - Throws: `.malformed` when `ciphertext` is not a whole number of units or `offset` is not aligned.
    public func decrypt(_ ciphertext: some Collection<UInt8>, offset: UInt64) throws(FormatError) -> [UInt8] {
        try run(encrypt: false, ciphertext, offset: offset)
    }

    /// Encrypts whole 512-byte units; the first starts at stream byte `offset` (a multiple of 512).
    public func encrypt(_ plaintext: some Collection<UInt8>, offset: UInt64) throws(FormatError) -> [UInt8] {
        try run(encrypt: true, plaintext, offset: offset)
    }

    private func run(encrypt: Bool, _ input: some Collection<UInt8>, offset: UInt64) throws(FormatError) -> [UInt8] {
        let unit = WindowsEFS.unitSize
        guard input.count % unit == 0 else {
            throw FormatError(.malformed, "EFS data of \(input.count) bytes is not a whole number of 512-byte units")
        }
        guard offset % UInt64(unit) == 0 else {
            throw FormatError(.malformed, "EFS data offset \(offset) is not a multiple of 512")
        }
        let bytes = Array(input)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var start = 0
        var at = offset
        while start < bytes.count {
            let chunk = Array(bytes[start..<(start + unit)])
            let iv = Self.iv(algorithm, offset: at)
            switch engine {
            case .aes(let k): out += encrypt ? try k.encrypt(chunk, iv: iv) : try k.decrypt(chunk, iv: iv)
            case .tripleDES(let k): out += encrypt ? try k.cbcEncrypt(chunk, iv: iv) : try k.cbcDecrypt(chunk, iv: iv)
            case .desx(let k): out += encrypt ? try k.cbcEncrypt(chunk, iv: iv) : try k.cbcDecrypt(chunk, iv: iv)
            }
            start += unit
            at &+= UInt64(unit)
        }
        return out
    }
}
