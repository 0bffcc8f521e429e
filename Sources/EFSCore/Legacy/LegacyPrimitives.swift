// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Crypto
import Foundation
import _CryptoExtras

/// Legacy and interop primitives over swift-crypto, for the targets that must read formats made elsewhere (Windows
/// EFS metadata and data, PKCS#12 key files) without importing swift-crypto themselves.
///
/// Nothing here is used by the native swift-efs format. MD5 and SHA-1 appear only because the Windows formats
/// prescribe them (thumbprints, DESX key expansion, PKCS#12 MACs and PBEs).
///
/// ```swift
/// let key = try LegacyCrypto.pbkdf2(sha256: true, password: pw, salt: salt, iterations: 2048, length: 32)
/// let plain = try LegacyCrypto.aesCBCDecrypt(key: key, iv: iv, ciphertext)
/// ```
public enum LegacyCrypto {
    /// Most PBKDF2 iterations accepted from a file (PKCS#12 writers use 1–600 000; this bounds the CPU time).
    public static let maximumPBKDF2Iterations = 10_000_000
    /// Longest PBKDF2 output requested.
    public static let maximumPBKDF2Length = 1_024

    // MARK: - Digests

    public static func md5(_ data: some DataProtocol) -> [UInt8] { Array(Insecure.MD5.hash(data: data)) }
    public static func sha1(_ data: some DataProtocol) -> [UInt8] { Array(Insecure.SHA1.hash(data: data)) }
    public static func sha256(_ data: some DataProtocol) -> [UInt8] { Array(SHA256.hash(data: data)) }

    // MARK: - HMAC

    public static func hmacSHA1(key: [UInt8], _ data: some DataProtocol) -> [UInt8] {
        Array(HMAC<Insecure.SHA1>.authenticationCode(for: data, using: SymmetricKey(data: key)))
    }

    public static func hmacSHA256(key: [UInt8], _ data: some DataProtocol) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: data, using: SymmetricKey(data: key)))
    }

    // MARK: - PBKDF2

    /// PBKDF2 (RFC 8018 §5.2) with HMAC-SHA256 (`sha256: true`) or HMAC-SHA1.
    ///
    /// - Throws: ``FormatError/Code/limitExceeded`` when `iterations` or `length` is outside
    ///   1…``maximumPBKDF2Iterations`` / 1…``maximumPBKDF2Length``.
    public static func pbkdf2(
        sha256: Bool, password: [UInt8], salt: [UInt8], iterations: Int, length: Int
    ) throws(FormatError) -> [UInt8] {
        guard iterations >= 1, iterations <= maximumPBKDF2Iterations else {
            throw FormatError(
                .limitExceeded, "PBKDF2 iteration count \(iterations) is outside 1…\(maximumPBKDF2Iterations)")
        }
        guard length >= 1, length <= maximumPBKDF2Length else {
            throw FormatError(.limitExceeded, "PBKDF2 output length \(length) is outside 1…\(maximumPBKDF2Length)")
        }
        let key: SymmetricKey
        do {
            key = try KDF.Insecure.PBKDF2.deriveKey(
                from: password, salt: salt, using: sha256 ? .sha256 : .insecureSHA1, outputByteCount: length,
                unsafeUncheckedRounds: iterations)
        } catch {
            throw FormatError(.malformed, "PBKDF2 failed: \(error)")
        }
        return key.withUnsafeBytes { Array($0) }
    }

    // MARK: - AES-CBC without padding

    /// AES-CBC decryption without padding removal. `key` is 16, 24 or 32 bytes, `iv` 16 bytes, `data` a whole
    /// number of 16-byte blocks (possibly none).
    public static func aesCBCDecrypt(key: [UInt8], iv: [UInt8], _ data: [UInt8]) throws(FormatError) -> [UInt8] {
        try aesCBC(encrypt: false, key: key, iv: iv, data)
    }

    /// AES-CBC encryption without padding. Same requirements as ``aesCBCDecrypt(key:iv:_:)``.
    public static func aesCBCEncrypt(key: [UInt8], iv: [UInt8], _ data: [UInt8]) throws(FormatError) -> [UInt8] {
        try aesCBC(encrypt: true, key: key, iv: iv, data)
    }

    private static func aesCBC(encrypt: Bool, key: [UInt8], iv: [UInt8], _ data: [UInt8]) throws(FormatError) -> [UInt8]
    {
        guard [16, 24, 32].contains(key.count) else {
            throw FormatError(.unsupportedAlgorithm, "an AES key is \(key.count) bytes, not 16, 24 or 32")
        }
        guard iv.count == 16 else { throw FormatError(.malformed, "an AES-CBC IV is \(iv.count) bytes, not 16") }
        guard data.count % 16 == 0 else {
            throw FormatError(.malformed, "AES-CBC data of \(data.count) bytes is not a whole number of 16-byte blocks")
        }
        let k = try AESCBCKey(key: key)
        return encrypt ? try k.encrypt(data, iv: iv) : try k.decrypt(data, iv: iv)
    }
}

extension LegacyCrypto {
    /// Cryptographically secure random bytes (BoringSSL's generator, through `SymmetricKey`).
    public static func randomBytes(_ count: Int) -> [UInt8] {
        precondition(count >= 0 && count <= 1 << 20, "random byte count out of range")
        if count == 0 { return [] }
        return SymmetricKey(size: .init(bitCount: 8 * count)).withUnsafeBytes { Array($0) }
    }
}

/// An AES key held in a `SymmetricKey`, for many CBC operations under one key without re-checking it (Windows EFS
/// encrypts data in 512-byte CBC units, each with its own IV).
///
/// ```swift
/// let aes = try AESCBCKey(key: fek)
/// let plain = try aes.decrypt(unit, iv: iv)
/// ```
public struct AESCBCKey: Sendable {
    let key: SymmetricKey

    /// - Throws: ``FormatError/Code/unsupportedAlgorithm`` unless `key` is 16, 24 or 32 bytes.
    public init(key: [UInt8]) throws(FormatError) {
        guard [16, 24, 32].contains(key.count) else {
            throw FormatError(.unsupportedAlgorithm, "an AES key is \(key.count) bytes, not 16, 24 or 32")
        }
        self.key = SymmetricKey(data: key)
    }

    /// CBC decryption without padding of whole 16-byte blocks; `iv` is 16 bytes.
    public func decrypt(_ data: some Collection<UInt8>, iv: [UInt8]) throws(FormatError) -> [UInt8] {
        try run(encrypt: false, data, iv: iv)
    }

    /// CBC encryption without padding of whole 16-byte blocks; `iv` is 16 bytes.
    public func encrypt(_ data: some Collection<UInt8>, iv: [UInt8]) throws(FormatError) -> [UInt8] {
        try run(encrypt: true, data, iv: iv)
    }

    private func run(encrypt: Bool, _ data: some Collection<UInt8>, iv: [UInt8]) throws(FormatError) -> [UInt8] {
        guard iv.count == 16 else { throw FormatError(.malformed, "an AES-CBC IV is \(iv.count) bytes, not 16") }
        guard data.count % 16 == 0 else {
            throw FormatError(.malformed, "AES-CBC data of \(data.count) bytes is not a whole number of 16-byte blocks")
        }
        if data.isEmpty { return [] }
        do {
            let v = try AES._CBC.IV(ivBytes: iv)
            let bytes = Data(data)
            let out =
                encrypt
                ? try AES._CBC.encrypt(bytes, using: key, iv: v, noPadding: true)
                : try AES._CBC.decrypt(bytes, using: key, iv: v, noPadding: true)
            return Array(out)
        } catch {
            throw FormatError(.malformed, "AES-CBC failed: \(error)")
        }
    }
}

// MARK: - RSA PKCS#1 v1.5 (legacy key transport)

/// An RSA public key for the legacy PKCS#1 v1.5 key transport that Windows EFS (v1 metadata) and CryptoAPI use.
///
/// ```swift
/// let pub = try LegacyRSAPublicKey(certificate: cert)
/// let wrapped = try pub.encryptPKCS1v15(fekBlob)
/// ```
public struct LegacyRSAPublicKey: @unchecked Sendable {
    // BoringSSL public keys are immutable once made; their operations are thread-safe.
    let key: _RSA.Encryption.PublicKey

    /// Parses an RSA public key (SubjectPublicKeyInfo or PKCS#1 DER) of 1024 bits or more.
    public init(der: [UInt8]) throws(FormatError) {
        do { key = try _RSA.Encryption.PublicKey(unsafeDERRepresentation: der) } catch {
            throw FormatError(.unsupportedAlgorithm, "not an RSA public key of 1024 bits or more")
        }
    }

    init(_ key: _RSA.Encryption.PublicKey) { self.key = key }

    /// The modulus size in bits.
    public var keySizeInBits: Int { key.keySizeInBits }

    /// RSA PKCS#1 v1.5 encryption (RFC 8017 §7.2.1), big-endian output of the modulus size.
    public func encryptPKCS1v15(_ plaintext: [UInt8]) throws(FormatError) -> [UInt8] {
        guard plaintext.count <= key.maximumEncryptSize(with: ._WEAK_AND_INSECURE_PKCS_V1_5) else {
            throw FormatError(.limitExceeded, "\(plaintext.count) bytes are too long for PKCS#1 v1.5 with this key")
        }
        do { return Array(try key.encrypt(plaintext, padding: ._WEAK_AND_INSECURE_PKCS_V1_5)) } catch {
            throw FormatError(.malformed, "RSA PKCS#1 v1.5 encryption failed: \(error)")
        }
    }
}

extension EFSCertificate {
    /// The certificate's RSA public key for PKCS#1 v1.5 key transport (Windows EFS v1 metadata).
    ///
    /// - Throws: ``FormatError/Code/unsupportedAlgorithm`` when the key is not RSA.
    public func legacyRSAPublicKey() throws(FormatError) -> LegacyRSAPublicKey {
        guard let sig = _RSA.Signing.PublicKey(certificate.publicKey) else {
            throw FormatError(.unsupportedAlgorithm, "the certificate of \(displayName) has no RSA key")
        }
        return try LegacyRSAPublicKey(der: Array(sig.derRepresentation))
    }

    /// RSA PKCS#1 v1.5 encryption under this certificate's public key (big-endian, as RFC 8017 defines it).
    public func encryptPKCS1v15(_ plaintext: [UInt8]) throws(FormatError) -> [UInt8] {
        try legacyRSAPublicKey().encryptPKCS1v15(plaintext)
    }
}

extension UserPrivateKey {
    /// RSA PKCS#1 v1.5 decryption (RFC 8017 §7.2.2) of big-endian `ciphertext`.
    ///
    /// - Throws: ``FormatError/Code/unsupportedAlgorithm`` for non-RSA keys; ``FormatError/authenticationFailed``
    ///   when the ciphertext does not decrypt under this key (wrong key or modified data; not distinguished).
    public borrowing func decryptPKCS1v15(_ ciphertext: [UInt8]) throws(FormatError) -> [UInt8] {
        guard case .rsa(let k) = storage else {
            throw FormatError(.unsupportedAlgorithm, "PKCS#1 v1.5 decryption needs an RSA key")
        }
        guard ciphertext.count == (k.keySizeInBits + 7) / 8 else { throw FormatError.authenticationFailed }
        do { return Array(try k.decrypt(ciphertext, padding: ._WEAK_AND_INSECURE_PKCS_V1_5)) } catch {
            throw FormatError.authenticationFailed
        }
    }

    /// Whether the key is RSA, and its modulus size in bits.
    public var rsaKeySizeInBits: Int? {
        guard case .rsa(let k) = storage else { return nil }
        return k.keySizeInBits
    }

    /// The RSA public key, for PKCS#1 v1.5 encryption (tests and export).
    public func legacyRSAPublicKey() throws(FormatError) -> LegacyRSAPublicKey {
        guard case .rsa(let k) = storage else {
            throw FormatError(.unsupportedAlgorithm, "not an RSA key")
        }
        return LegacyRSAPublicKey(k.publicKey)
    }

    /// Parses an RSA private key in PKCS#1 `RSAPrivateKey` or PKCS#8 `PrivateKeyInfo` DER, accepting the 1024-bit
    /// and larger keys that older Windows EFS certificates use (``parse(der:)`` accepts 2048–4096 only).
    ///
    /// - Throws: ``FormatError/Code/unsupportedAlgorithm`` when the bytes are not such a key.
    public static func parseLegacyRSA(der: [UInt8]) throws(FormatError) -> UserPrivateKey {
        let k: _RSA.Encryption.PrivateKey
        do { k = try _RSA.Encryption.PrivateKey(unsafeDERRepresentation: der) } catch {
            throw FormatError(.unsupportedAlgorithm, "not an RSA private key (PKCS#1 or PKCS#8) of 1024 bits or more")
        }
        guard k.keySizeInBits <= 16_384 else {
            throw FormatError(.unsupportedAlgorithm, "RSA key of \(k.keySizeInBits) bits is above 16384")
        }
        return UserPrivateKey(.rsa(k))
    }

    /// Generates an RSA key of `bits` (1024…4096, multiple of 8) for tests of the legacy formats.
    public static func generateLegacyRSA(bits: Int) throws(FormatError) -> UserPrivateKey {
        do {
            return UserPrivateKey(.rsa(try _RSA.Encryption.PrivateKey(unsafeKeySize: .init(bitCount: bits))))
        } catch {
            throw FormatError(.unsupportedAlgorithm, "RSA key generation of \(bits) bits failed: \(error)")
        }
    }
}
