// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore

/// A CryptoAPI ALG_ID of a Windows EFS file encryption key (`windows-efs-metadata.md` §4.2 "ALG_ID values",
/// MS-EFSR 2.2.13).
public struct WindowsAlgorithm: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// CALG_AES_256: the default since Windows XP SP1 / 2003. 32-byte key.
    public static let aes256 = WindowsAlgorithm(rawValue: 0x6610)
    /// CALG_3DES: Windows XP RTM default and FIPS policy on XP/2003. 24-byte key.
    public static let tripleDES = WindowsAlgorithm(rawValue: 0x6603)
    /// CALG_DESX: Windows 2000. 16-byte key, expanded with MD5 (§4.5).
    public static let desx = WindowsAlgorithm(rawValue: 0x6604)

    /// The algorithms this build decrypts and encrypts.
    public static let supported: [WindowsAlgorithm] = [.aes256, .tripleDES, .desx]

    /// Key length in bytes, or nil for an unsupported algorithm.
    public var keyLength: Int? {
        switch self {
        case .aes256: 32
        case .tripleDES: 24
        case .desx: 16
        default: nil
        }
    }

    /// Whether the algorithm is DES-based (3DES, DESX): weak by today's standards; flagged in output.
    public var isWeak: Bool { self == .tripleDES || self == .desx }

    public var description: String {
        let hex = "0x" + String(rawValue, radix: 16, uppercase: true)
        switch self {
        case .aes256: return "AES-256 (\(hex))"
        case .tripleDES: return "3DES (\(hex))"
        case .desx: return "DESX (\(hex))"
        case WindowsAlgorithm(rawValue: 0x6601): return "DES (\(hex))"
        default: return "ALG_ID \(hex)"
        }
    }
}

/// A Windows EFS file encryption key: the plaintext form of an Encrypted FEK (§4.2, MS-EFSR 2.2.2.1.5),
/// `{u32 KeyLength, u32 Entropy, u32 ALG_ID, u32 0, Key}`.
///
/// ```swift
/// let fek = try entry.unwrapFEK(using: privateKey)
/// if fek.isWeak { print("warning: \(fek.algorithm) is DES-based") }
/// ```
public struct WindowsFEK: Sendable {
    public let algorithm: WindowsAlgorithm
    /// The Entropy field. Windows 10 stores 0x20 for AES-256 where the spec's table implies 256, so it is kept but
    /// not validated (§4.2).
    public let entropy: UInt32
    /// The key bytes. Never printed.
    public let key: [UInt8]

    /// A FEK from its parts.
    ///
    /// - Throws: ``FormatError/Code/unsupportedAlgorithm`` for an ALG_ID other than AES-256, 3DES and DESX;
    ///   `.malformed` when the key length does not fit the algorithm.
    public init(algorithm: WindowsAlgorithm, key: [UInt8], entropy: UInt32? = nil) throws(FormatError) {
        guard let expected = algorithm.keyLength else {
            throw FormatError(
                .unsupportedAlgorithm, "\(algorithm) is not supported yet (AES-256 0x6610, 3DES 0x6603, DESX 0x6604 are)")
        }
        guard key.count == expected else {
            throw FormatError(.malformed, "a \(algorithm) FEK of \(key.count) bytes; the algorithm needs \(expected)")
        }
        self.algorithm = algorithm
        self.key = key
        // Written as the key length in bytes, as the Windows 10 sample stores for AES-256 (0x20). Unverified for the
        // DES-based algorithms, which Windows only reads today.
        self.entropy = entropy ?? UInt32(expected)
    }

    /// A new random FEK.
    public static func generate(_ algorithm: WindowsAlgorithm = .aes256) throws(FormatError) -> WindowsFEK {
        guard let n = algorithm.keyLength else {
            throw FormatError(.unsupportedAlgorithm, "\(algorithm) is not supported yet")
        }
        return try WindowsFEK(algorithm: algorithm, key: LegacyCrypto.randomBytes(n))
    }

    public var isWeak: Bool { algorithm.isWeak }

    /// §4.2 plaintext Encrypted FEK: KeyLength, Entropy, ALG_ID, Reserved 0, Key.
    public static let headerSize = 16

    /// Parses the decrypted FEK structure.
    ///
    /// - Throws: `.truncated` / `.trailingData` when the bytes do not hold exactly 16 + KeyLength bytes,
    ///   `.unsupportedAlgorithm` naming an unknown ALG_ID, `.malformed` for a key length that does not fit it.
    public static func parse(_ bytes: [UInt8]) throws(FormatError) -> WindowsFEK {
        var r = ByteReader(bytes)
        let keyLength = try r.readLength(width: 4, maximum: 64, minimum: 1, "FEK KeyLength")
        let entropy = try r.readUInt32("FEK Entropy")
        let alg = WindowsAlgorithm(rawValue: try r.readUInt32("FEK ALG_ID"))
        _ = try r.readUInt32("FEK reserved")  // Reserved, 0; not checked strictly (like Entropy).
        let key = Array(try r.readBytes(keyLength, "FEK key"))
        try r.expectEnd("the FEK key")
        return try WindowsFEK(algorithm: alg, key: key, entropy: entropy)
    }

    /// The FEK structure to wrap.
    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: Self.headerSize + key.count)
        w.write(UInt32(key.count))
        w.write(entropy)
        w.write(algorithm.rawValue)
        w.write(UInt32(0))
        w.write(bytes: key)
        return w.bytes
    }
}

// MARK: - Wrapping and unwrapping

extension WindowsKeyEntry {
    /// Unwraps this entry's FEK with `key` (§4.2): reverse the stored bytes, RSA PKCS#1 v1.5 decrypt, parse.
    ///
    /// - Throws: `.unsupportedAlgorithm` for AES-wrapped (flags 1) or unknown-flag entries, non-RSA keys and
    ///   unknown ALG_IDs; ``FormatError/authenticationFailed`` when the key does not decrypt the entry (the wrong
    ///   key, or modified data); `.malformed`/`.truncated` when the decrypted structure is not a FEK.
    public func unwrapFEK(using key: borrowing UserPrivateKey) throws(FormatError) -> WindowsFEK {
        guard flags == Self.flagRSA else {
            throw FormatError(
                .unsupportedAlgorithm,
                flags == Self.flagAESWrapped
                    ? "this entry's FEK is AES-wrapped (flags 1, smart-card keys); not supported yet"
                    : "this entry has unknown flags 0x\(String(flags, radix: 16))")
        }
        let plain = try key.decryptPKCS1v15(encryptedFEK.reversed())
        return try WindowsFEK.parse(plain)
    }

    /// A new entry wrapping `fek` for `certificate` (RSA only): PKCS#1 v1.5 encryption, stored byte-reversed,
    /// with the certificate's SHA-1 thumbprint.
    ///
    /// - Parameter displayName: defaults to the certificate's common name.
    public static func wrapping(
        _ fek: WindowsFEK, for certificate: EFSCertificate, sid: WindowsSID? = nil, containerName: String? = nil,
        providerName: String? = nil, displayName: String? = nil
    ) throws(FormatError) -> WindowsKeyEntry {
        let wrapped = try certificate.encryptPKCS1v15(fek.encode())
        let hash = WindowsCertificateHash(
            thumbprint: certificate.thumbprint.bytes, containerName: containerName, providerName: providerName,
            displayName: displayName ?? certificate.displayName)
        return WindowsKeyEntry(
            flags: flagRSA, publicKeyInfo: WindowsPublicKeyInfo(sid: sid, certificate: hash),
            encryptedFEK: wrapped.reversed())
    }
}

extension WindowsKeyEntry {
    /// A new entry wrapping `fek` for a bare RSA public key (for certificates of 1024 bits, which ``EFSCertificate``
    /// does not accept). `thumbprint` is the SHA-1 of the certificate's DER (`LegacyCrypto.sha1`).
    public static func wrapping(
        _ fek: WindowsFEK, publicKey: LegacyRSAPublicKey, thumbprint: [UInt8], sid: WindowsSID? = nil,
        containerName: String? = nil, providerName: String? = nil, displayName: String? = nil
    ) throws(FormatError) -> WindowsKeyEntry {
        let wrapped = try publicKey.encryptPKCS1v15(fek.encode())
        let hash = WindowsCertificateHash(
            thumbprint: thumbprint, containerName: containerName, providerName: providerName, displayName: displayName)
        return WindowsKeyEntry(
            flags: flagRSA, publicKeyInfo: WindowsPublicKeyInfo(sid: sid, certificate: hash),
            encryptedFEK: wrapped.reversed())
    }
}

extension WindowsEFSMetadata {
    /// A DDF or DRF entry that a key can open.
    public struct Match: Sendable {
        public var entry: WindowsKeyEntry
        public var isRecovery: Bool
        public var index: Int
    }

    /// The entries whose thumbprint is `thumbprint` (DDF first, then DRF).
    public func entries(matching thumbprint: [UInt8]) -> [Match] {
        var out: [Match] = []
        for (i, e) in ddf.enumerated() where e.publicKeyInfo.thumbprint == thumbprint {
            out.append(Match(entry: e, isRecovery: false, index: i))
        }
        for (i, e) in (drf ?? []).enumerated() where e.publicKeyInfo.thumbprint == thumbprint {
            out.append(Match(entry: e, isRecovery: true, index: i))
        }
        return out
    }

    /// Unwraps the FEK with `key`, using the entries whose thumbprint matches `thumbprint` (the key's certificate),
    /// or, when `thumbprint` is nil, trying every RSA entry in turn.
    ///
    /// - Throws: `.authenticationFailed` with "no DDF or DRF entry matches the key" when nothing matches or no entry
    ///   decrypts; the other errors of ``WindowsKeyEntry/unwrapFEK(using:)`` when a matching entry is unusable.
    public func unwrapFEK(
        using key: borrowing UserPrivateKey, thumbprint: [UInt8]?
    ) throws(FormatError) -> (WindowsFEK, Match) {
        let candidates: [Match]
        if let thumbprint {
            candidates = entries(matching: thumbprint)
        } else {
            candidates =
                ddf.enumerated().map { Match(entry: $1, isRecovery: false, index: $0) }
                + (drf ?? []).enumerated().map { Match(entry: $1, isRecovery: true, index: $0) }
        }
        var lastError: FormatError?
        for c in candidates {
            do throws(FormatError) {
                return (try c.entry.unwrapFEK(using: key), c)
            } catch {
                lastError = error
            }
        }
        // A key whose certificate matches an entry by thumbprint but does not open it: say why.
        if thumbprint != nil, let lastError { throw lastError }
        throw FormatError(.authenticationFailed, "no DDF or DRF entry matches the key")
    }
}
