// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Crypto
import Foundation
import SwiftASN1
import _CryptoExtras

/// A passphrase held in zeroing storage (it lives in a `SymmetricKey`, whose bytes are cleared when released).
public struct Passphrase: Sendable {
    let storage: SymmetricKey

    public init(_ bytes: some ContiguousBytes) { storage = SymmetricKey(data: bytes) }

    /// Reads a passphrase from file contents: the first line, without its line ending.
    public init(fileContents bytes: [UInt8]) {
        var line = bytes.prefix { $0 != 0x0A }
        if line.last == 0x0D { line = line.dropLast() }
        self.init(Array(line))
    }

    public var isEmpty: Bool { storage.bitCount == 0 }

    func withBytes<R>(_ body: ([UInt8]) throws -> R) rethrows -> R {
        try storage.withUnsafeBytes { raw in try body(Array(raw)) }
    }
}

/// Private keys on disk, in the formats openssl reads: PKCS#8 `PRIVATE KEY`, or PKCS#8 `ENCRYPTED PRIVATE KEY`
/// with PBES2 (PBKDF2-HMAC-SHA256 + AES-256-CBC), which is what `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes.
/// `Documentation/key-store-format.md` §3.
public enum PrivateKeyFile {
    /// PBKDF2 rounds for new files (OWASP 2023 guidance for PBKDF2-HMAC-SHA256).
    public static let defaultIterations = 600_000
    /// The most PBKDF2 rounds a file may ask for: bounds the time a hostile file can cost.
    public static let maximumIterations = 10_000_000
    /// The fewest rounds accepted on read.
    public static let minimumIterations = 1_000

    static let oidPBES2: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 5, 13]
    static let oidPBKDF2: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 5, 12]
    static let oidHMACSHA1: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 2, 7]
    static let oidHMACSHA256: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 2, 9]
    static let oidHMACSHA512: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 2, 11]
    static let oidAES128CBC: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 1, 2]
    static let oidAES192CBC: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 1, 22]
    static let oidAES256CBC: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 1, 42]

    /// Encodes `key` as PEM: encrypted when a passphrase is given, plain PKCS#8 otherwise.
    public static func encode(_ key: borrowing UserPrivateKey, passphrase: Passphrase?, iterations: Int = defaultIterations) -> String {
        let plain = key.pkcs8DER()
        guard let passphrase else { return PEMDocument(type: "PRIVATE KEY", derBytes: plain).pemString + "\n" }
        precondition((minimumIterations...maximumIterations).contains(iterations))
        var g = SystemRandomNumberGenerator()
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255, using: &g) }
        let iv = AES._CBC.IV()
        let kek = passphrase.withBytes { pw in
            try! KDF.Insecure.PBKDF2.deriveKey(from: pw, salt: salt, using: .sha256, outputByteCount: 32, unsafeUncheckedRounds: iterations)
        }
        let ct = try! AES._CBC.encrypt(plain, using: kek, iv: iv)
        var ser = DER.Serializer()
        try! ser.appendConstructedNode(identifier: .sequence) { top in
            try top.appendConstructedNode(identifier: .sequence) { alg in
                try alg.serialize(oidPBES2)
                try alg.appendConstructedNode(identifier: .sequence) { params in
                    try params.appendConstructedNode(identifier: .sequence) { kdf in
                        try kdf.serialize(oidPBKDF2)
                        try kdf.appendConstructedNode(identifier: .sequence) { p in
                            try p.serialize(ASN1OctetString(contentBytes: salt[...]))
                            try p.serialize(iterations)
                            try p.appendConstructedNode(identifier: .sequence) { prf in
                                try prf.serialize(oidHMACSHA256)
                                try prf.serialize(ASN1Null())
                            }
                        }
                    }
                    try params.appendConstructedNode(identifier: .sequence) { enc in
                        try enc.serialize(oidAES256CBC)
                        try enc.serialize(ASN1OctetString(contentBytes: Array(iv)[...]))
                    }
                }
            }
            try top.serialize(ASN1OctetString(contentBytes: Array(ct)[...]))
        }
        return PEMDocument(type: "ENCRYPTED PRIVATE KEY", derBytes: ser.serializedBytes).pemString + "\n"
    }

    /// Whether a PEM text holds an encrypted key.
    public static func isEncrypted(_ text: String) -> Bool { text.contains("ENCRYPTED PRIVATE KEY") }

    /// Decodes a private key file.
    ///
    /// - Parameters:
    ///   - passphrase: called only when the key is encrypted.
    ///   - legacyRSA: accept only RSA keys, of 1024 bits or more (``UserPrivateKey/parseLegacyRSA(der:)``), as
    ///     Windows EFS data needs; otherwise the keys ``UserPrivateKey/parse(der:)`` accepts.
    /// - Throws: ``FormatError/authenticationFailed`` for a wrong passphrase; other codes for malformed files.
    public static func decode(
        _ bytes: [UInt8], legacyRSA: Bool = false, passphrase: () throws -> Passphrase
    ) throws -> UserPrivateKey {
        guard bytes.count <= Limits.maximumKeyFileSize else {
            throw FormatError.limitExceeded("key file", value: UInt64(bytes.count), maximum: Limits.maximumKeyFileSize)
        }
        guard let text = String(validating: bytes, as: UTF8.self), text.contains("-----BEGIN") else {
            return try parseKey(bytes, legacyRSA: legacyRSA)
        }
        let docs: [PEMDocument]
        do { docs = try PEMDocument.parseMultiple(pemString: text) } catch {
            throw FormatError.malformed("not valid PEM: \(error)")
        }
        if let doc = docs.first(where: { $0.discriminator == "ENCRYPTED PRIVATE KEY" }) {
            return try decrypt(doc.derBytes, passphrase: passphrase(), legacyRSA: legacyRSA)
        }
        if let doc = docs.first(where: { ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"].contains($0.discriminator) }) {
            return try parseKey(doc.derBytes, legacyRSA: legacyRSA)
        }
        throw FormatError.malformed("no private key block in the PEM text")
    }

    static func parseKey(_ der: [UInt8], legacyRSA: Bool) throws(FormatError) -> UserPrivateKey {
        legacyRSA ? try UserPrivateKey.parseLegacyRSA(der: der) : try UserPrivateKey.parse(der: der)
    }

    /// The parameters and ciphertext of a PBES2-encrypted key (shared with PKCS#12: ``PBES2``).
    typealias PBES2Parameters = PBES2.Encrypted

    static func parseEncryptedInfo(_ der: [UInt8]) throws(FormatError) -> PBES2Parameters {
        do {
            let root = try DER.parse(der)
            // RFC 5958 EncryptedPrivateKeyInfo ::= SEQUENCE { encryptionAlgorithm, encryptedData OCTET STRING }
            return try DER.sequence(root, identifier: .sequence) { top in
                guard let algNode = top.next(), let dataNode = top.next(), top.next() == nil else {
                    throw FormatError.malformed("EncryptedPrivateKeyInfo has the wrong number of fields")
                }
                let ciphertext = Array(try ASN1OctetString(derEncoded: dataNode).bytes)
                // RFC 8018 A.4: AlgorithmIdentifier { id-PBES2, PBES2-params { keyDerivationFunc, encryptionScheme } }
                return try DER.sequence(algNode, identifier: .sequence) { alg in
                    guard let oidNode = alg.next(), let paramsNode = alg.next(), alg.next() == nil else {
                        throw FormatError.malformed("encryption AlgorithmIdentifier is malformed")
                    }
                    guard try ASN1ObjectIdentifier(derEncoded: oidNode) == oidPBES2 else {
                        throw FormatError(.unsupportedAlgorithm, "encrypted key does not use PBES2 (re-export it with openssl pkcs8 -topk8 -v2 aes-256-cbc)")
                    }
                    return try PBES2.parse(parameters: paramsNode, ciphertext: ciphertext)
                }
            }
        } catch let e as FormatError {
            throw e
        } catch {
            throw .malformed("encrypted private key is not valid DER: \(error)")
        }
    }

    static func decrypt(_ der: [UInt8], passphrase: Passphrase, legacyRSA: Bool = false) throws -> UserPrivateKey {
        try decrypt(try parseEncryptedInfo(der), passphrase: passphrase, legacyRSA: legacyRSA)
    }

    static func decrypt(_ p: PBES2Parameters, passphrase: Passphrase, legacyRSA: Bool = false) throws -> UserPrivateKey {
        var plain: [UInt8]
        do {
            plain = try passphrase.withBytes { pw throws(FormatError) in
                try PBES2.decrypt(p, password: pw, allowedIterations: minimumIterations...maximumIterations)
            }
        } catch let e as FormatError {
            guard e.code == .authenticationFailed else { throw e }
            throw FormatError(.authenticationFailed, "wrong passphrase (or a damaged key file)")
        }
        defer { Zeroing.clear(&plain) }
        do {
            return try parseKey(plain, legacyRSA: legacyRSA)
        } catch {
            // A key of a kind the caller does not take (an EC key where RSA is needed) is no passphrase problem.
            if legacyRSA, isKey(plain) { throw error }
            // CBC padding can pass by chance with a wrong passphrase; the DER then does not parse.
            throw FormatError(.authenticationFailed, "wrong passphrase (or a damaged key file)")
        }
    }

    /// Whether `der` is a private key ``UserPrivateKey/parse(der:)`` takes.
    static func isKey(_ der: [UInt8]) -> Bool {
        do {
            _ = try UserPrivateKey.parse(der: der)
            return true
        } catch {
            return false
        }
    }
}
