// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Crypto
import Foundation
import SwiftASN1
import _CryptoExtras

/// PBES2 (RFC 8018 §6.2): PBKDF2 and a CBC cipher, as encrypted PKCS#8 keys (``PrivateKeyFile``) and PKCS#12 files
/// (``PKCS12File``) use it.
///
/// Supported: PBKDF2 with HMAC-SHA1/224/256/384/512 and AES-128/192/256-CBC or DES-EDE3-CBC.
enum PBES2 {
    static let oid: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 5, 13]
    static let oidPBKDF2: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 5, 12]
    static let oidHMACSHA1: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 2, 7]
    static let oidHMACSHA224: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 2, 8]
    static let oidHMACSHA256: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 2, 9]
    static let oidHMACSHA384: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 2, 10]
    static let oidHMACSHA512: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 2, 11]
    static let oidAES128CBC: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 1, 2]
    static let oidAES192CBC: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 1, 22]
    static let oidAES256CBC: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 1, 42]
    static let oidDESEDE3CBC: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 3, 7]

    /// Longest PBKDF2 salt accepted (RFC 8018 recommends at least 8 bytes; writers use 8–32).
    static let maximumSaltSize = 1_024

    /// PBKDF2-params (RFC 8018 A.2).
    struct PBKDF2Parameters {
        var salt: [UInt8]
        var iterations: Int
        var keyLength: Int?
        var prf: ASN1ObjectIdentifier
    }

    /// The parameters of one PBES2 encryption and its ciphertext.
    struct Encrypted {
        var salt: [UInt8]
        var iterations: Int
        var keyLength: Int?
        var prf: ASN1ObjectIdentifier
        var cipher: ASN1ObjectIdentifier
        var iv: [UInt8]
        var ciphertext: [UInt8]
    }

    // MARK: - Parsing

    /// Parses `PBES2-params` (RFC 8018 A.4), the parameters of an `id-PBES2` AlgorithmIdentifier.
    ///
    /// Works on DER or BER nodes. Throws `FormatError` or swift-asn1's errors (callers map those to `.malformed`).
    static func parse(parameters node: ASN1Node, ciphertext: [UInt8]) throws -> Encrypted {
        try BER.sequence(node, identifier: .sequence) { params in
            // PBES2-params ::= SEQUENCE { keyDerivationFunc AlgorithmIdentifier, encryptionScheme AlgorithmIdentifier }
            guard let kdfNode = params.next(), let encNode = params.next(), params.next() == nil else {
                throw FormatError.malformed("PBES2 parameters are malformed")
            }
            let kdf = try BER.sequence(kdfNode, identifier: .sequence) { kdf in
                guard let kOID = kdf.next(), let kParams = kdf.next(), kdf.next() == nil else {
                    throw FormatError.malformed("PBES2 key derivation is malformed")
                }
                let oid = try ASN1ObjectIdentifier(berEncoded: kOID)
                guard oid == oidPBKDF2 else {
                    throw FormatError(.unsupportedAlgorithm, "PBES2 key derivation \(AlgorithmNames.name(oid)) is not PBKDF2")
                }
                return try parsePBKDF2(kParams)
            }
            // encryptionScheme: AlgorithmIdentifier { cipher OID, iv OCTET STRING } for AES-CBC and DES-EDE3-CBC.
            let (cipher, iv) = try BER.sequence(encNode, identifier: .sequence) { enc in
                guard let cOID = enc.next() else { throw FormatError.malformed("PBES2 encryption scheme is malformed") }
                let oid = try ASN1ObjectIdentifier(berEncoded: cOID)
                guard [oidAES128CBC, oidAES192CBC, oidAES256CBC, oidDESEDE3CBC].contains(oid) else {
                    throw FormatError(.unsupportedAlgorithm, "PBES2 cipher \(AlgorithmNames.name(oid)) is not supported")
                }
                guard let ivNode = enc.next(), enc.next() == nil else {
                    throw FormatError.malformed("PBES2 encryption scheme is malformed")
                }
                return (oid, Array(try ASN1OctetString(berEncoded: ivNode).bytes))
            }
            return Encrypted(
                salt: kdf.salt, iterations: kdf.iterations, keyLength: kdf.keyLength, prf: kdf.prf,
                cipher: cipher, iv: iv, ciphertext: ciphertext)
        }
    }

    /// Parses `PBKDF2-params` (RFC 8018 A.2):
    /// `SEQUENCE { salt OCTET STRING, iterationCount INTEGER, keyLength INTEGER OPTIONAL, prf DEFAULT hmacWithSHA1 }`.
    static func parsePBKDF2(_ node: ASN1Node) throws -> PBKDF2Parameters {
        try BER.sequence(node, identifier: .sequence) { p in
            guard let saltNode = p.next(), let iterNode = p.next() else {
                throw FormatError.malformed("PBKDF2 parameters are malformed")
            }
            // The salt is `specified OCTET STRING`; the `otherSource` choice is not used by anyone.
            guard saltNode.identifier == .octetString else {
                throw FormatError(.unsupportedAlgorithm, "PBKDF2 salt is not an OCTET STRING")
            }
            let salt = Array(try ASN1OctetString(berEncoded: saltNode).bytes)
            let iterations = try Int(berEncoded: iterNode)
            var keyLength: Int?
            var prf = oidHMACSHA1
            var next = p.next()
            if let n = next, n.identifier == .integer {
                keyLength = try Int(berEncoded: n)
                next = p.next()
            }
            if let n = next {
                prf = try BER.sequence(n, identifier: .sequence) { a in
                    guard let o = a.next() else { throw FormatError.malformed("PBKDF2 prf is malformed") }
                    let oid = try ASN1ObjectIdentifier(berEncoded: o)
                    // The parameters are NULL or absent (RFC 8018 B.1.2).
                    if let params = a.next(), params.identifier != .null {
                        throw FormatError.malformed("PBKDF2 prf parameters are not NULL")
                    }
                    guard a.next() == nil else { throw FormatError.malformed("PBKDF2 prf is malformed") }
                    return oid
                }
            }
            guard p.next() == nil else { throw FormatError.malformed("PBKDF2 parameters have extra fields") }
            return PBKDF2Parameters(salt: salt, iterations: iterations, keyLength: keyLength, prf: prf)
        }
    }

    // MARK: - Key derivation and decryption

    /// PBKDF2 (RFC 8018 §5.2) with the PRF `prf`.
    ///
    /// - Throws: `.limitExceeded` for iterations outside `allowedIterations`, `.malformed` for a bad salt,
    ///   `.unsupportedAlgorithm` for an unknown PRF.
    static func pbkdf2(
        _ p: PBKDF2Parameters, password: [UInt8], count: Int, allowedIterations: ClosedRange<Int>
    ) throws(FormatError) -> SymmetricKey {
        guard allowedIterations.contains(p.iterations) else {
            throw .limitExceeded("PBKDF2 iterations", value: UInt64(max(0, p.iterations)), maximum: allowedIterations.upperBound)
        }
        guard (1...maximumSaltSize).contains(p.salt.count) else { throw .malformed("PBKDF2 salt has a bad length") }
        let hash: KDF.Insecure.PBKDF2.HashFunction
        switch p.prf {
        case oidHMACSHA1: hash = .insecureSHA1
        case oidHMACSHA224: hash = .insecureSHA224
        case oidHMACSHA256: hash = .sha256
        case oidHMACSHA384: hash = .sha384
        case oidHMACSHA512: hash = .sha512
        default: throw FormatError(.unsupportedAlgorithm, "PBKDF2 PRF \(AlgorithmNames.name(p.prf)) is not supported")
        }
        do {
            return try KDF.Insecure.PBKDF2.deriveKey(
                from: password, salt: p.salt, using: hash, outputByteCount: count, unsafeUncheckedRounds: p.iterations)
        } catch {
            throw .malformed("PBKDF2 failed: \(error)")
        }
    }

    /// Decrypts `e` with `password` (the password's bytes as they are: PBES2 does not reformat them).
    ///
    /// - Returns: the plaintext, padding removed.
    /// - Throws: ``FormatError/authenticationFailed`` when the padding is wrong (a wrong password, almost always);
    ///   `.limitExceeded` for an iteration count outside `allowedIterations`; `.malformed` or `.unsupportedAlgorithm`
    ///   for parameters that do not fit.
    static func decrypt(_ e: Encrypted, password: [UInt8], allowedIterations: ClosedRange<Int>) throws(FormatError) -> [UInt8] {
        let keySize: Int
        let blockSize: Int
        switch e.cipher {
        case oidAES128CBC: (keySize, blockSize) = (16, 16)
        case oidAES192CBC: (keySize, blockSize) = (24, 16)
        case oidAES256CBC: (keySize, blockSize) = (32, 16)
        case oidDESEDE3CBC: (keySize, blockSize) = (24, 8)
        default: throw FormatError(.unsupportedAlgorithm, "PBES2 cipher \(AlgorithmNames.name(e.cipher)) is not supported")
        }
        guard e.iv.count == blockSize else { throw .malformed("PBES2 IV is \(e.iv.count) bytes, not \(blockSize)") }
        if let kl = e.keyLength, kl != keySize { throw .malformed("PBKDF2 key length does not fit the cipher") }
        // Checked before the (slow) key derivation.
        guard !e.ciphertext.isEmpty, e.ciphertext.count % blockSize == 0 else { throw .authenticationFailed }
        let key = try pbkdf2(
            PBKDF2Parameters(salt: e.salt, iterations: e.iterations, keyLength: e.keyLength, prf: e.prf),
            password: password, count: keySize, allowedIterations: allowedIterations)
        var plain: [UInt8]
        if blockSize == 16 {
            do {
                plain = Array(try AES._CBC.decrypt(e.ciphertext, using: key, iv: AES._CBC.IV(ivBytes: e.iv), noPadding: true))
            } catch {
                throw .authenticationFailed
            }
        } else {
            var keyBytes = key.withUnsafeBytes { Array($0) }
            defer { Zeroing.clear(&keyBytes) }
            plain = try TripleDES(key: keyBytes).cbcDecrypt(e.ciphertext, iv: e.iv)
        }
        defer { Zeroing.clear(&plain) }
        return try PKCS7Padding.remove(from: plain, blockSize: blockSize)
    }
}

/// Best-effort clearing of secrets held in arrays we own.
enum Zeroing {
    static func clear(_ bytes: inout [UInt8]) {
        for i in bytes.indices { bytes[i] = 0 }
    }
}

/// Names of the algorithm identifiers that appear in key files, for error messages.
enum AlgorithmNames {
    static let known: [ASN1ObjectIdentifier: String] = [
        PBES2.oid: "PBES2",
        PBES2.oidPBKDF2: "PBKDF2",
        PBES2.oidHMACSHA1: "hmacWithSHA1",
        PBES2.oidHMACSHA224: "hmacWithSHA224",
        PBES2.oidHMACSHA256: "hmacWithSHA256",
        PBES2.oidHMACSHA384: "hmacWithSHA384",
        PBES2.oidHMACSHA512: "hmacWithSHA512",
        PBES2.oidAES128CBC: "aes128-CBC",
        PBES2.oidAES192CBC: "aes192-CBC",
        PBES2.oidAES256CBC: "aes256-CBC",
        PBES2.oidDESEDE3CBC: "des-EDE3-CBC",
        [1, 3, 14, 3, 2, 7]: "desCBC",
        [1, 2, 840, 113_549, 3, 2]: "rc2CBC",
        [1, 2, 840, 113_549, 1, 5, 3]: "pbeWithMD5AndDES-CBC",
        [1, 2, 840, 113_549, 1, 5, 10]: "pbeWithSHA1AndDES-CBC",
        [1, 2, 840, 113_549, 1, 5, 14]: "PBMAC1",
        [1, 2, 840, 113_549, 1, 12, 1, 1]: "pbeWithSHAAnd128BitRC4",
        [1, 2, 840, 113_549, 1, 12, 1, 2]: "pbeWithSHAAnd40BitRC4",
        [1, 2, 840, 113_549, 1, 12, 1, 3]: "pbeWithSHAAnd3-KeyTripleDES-CBC",
        [1, 2, 840, 113_549, 1, 12, 1, 4]: "pbeWithSHAAnd2-KeyTripleDES-CBC",
        [1, 2, 840, 113_549, 1, 12, 1, 5]: "pbeWithSHAAnd128BitRC2-CBC",
        [1, 2, 840, 113_549, 1, 12, 1, 6]: "pbewithSHAAnd40BitRC2-CBC",
        [1, 3, 14, 3, 2, 26]: "SHA-1",
        [2, 16, 840, 1, 101, 3, 4, 2, 1]: "SHA-256",
        [2, 16, 840, 1, 101, 3, 4, 2, 2]: "SHA-384",
        [2, 16, 840, 1, 101, 3, 4, 2, 3]: "SHA-512",
        [2, 16, 840, 1, 101, 3, 4, 2, 4]: "SHA-224",
        [1, 2, 840, 113_549, 2, 5]: "MD5",
        [1, 2, 840, 113_549, 1, 7, 2]: "signedData",
        [1, 2, 840, 113_549, 1, 7, 3]: "envelopedData",
    ]

    /// The name of a known identifier, the dotted OID otherwise.
    static func short(_ oid: ASN1ObjectIdentifier) -> String { known[oid] ?? "\(oid)" }

    /// "name (dotted OID)" for known identifiers, the dotted OID otherwise.
    static func name(_ oid: ASN1ObjectIdentifier) -> String {
        if let n = known[oid] { return "\(n) (\(oid))" }
        return "\(oid)"
    }
}
