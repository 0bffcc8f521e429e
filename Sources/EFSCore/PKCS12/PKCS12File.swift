// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Crypto
import Foundation
import SwiftASN1
import X509
import _CryptoExtras

/// A PKCS#12 file (`.pfx`, `.p12`, RFC 7292), read in password integrity and password privacy mode: the form in
/// which Windows exports a user's EFS certificate and private key (`cipher /x`, the certificate manager), and in
/// which `openssl pkcs12 -export` writes them.
///
/// The MAC is checked before anything is decrypted, so a wrong password is reported as such
/// (``FormatError/Code/authenticationFailed``) and never as damaged data. Supported:
///
/// - integrity: `MacData` with HMAC-SHA1/256/384/512 keyed by the PKCS#12 KDF (RFC 7292 appendix B), PBMAC1
///   (RFC 9579), or no MAC;
/// - privacy: PBES2 (PBKDF2 + AES-128/192/256-CBC or DES-EDE3-CBC, RFC 8018) and the legacy PKCS#12 PBEs
///   `pbeWithSHAAnd3-KeyTripleDES-CBC`, `…2-KeyTripleDES-CBC`, `…128BitRC2-CBC` and `…40BitRC2-CBC`
///   (RFC 7292 appendix C);
/// - bags: `keyBag`, `pkcs8ShroudedKeyBag`, `certBag` (X.509) and nested `safeContentsBag`; other bags (CRLs,
///   secrets) are skipped. Public-key integrity and privacy modes (`signedData`, `envelopedData`) are not.
///
/// An empty passphrase is tried both as RFC 7292's empty BMPString (two NUL bytes) and as the "null" password
/// (no bytes at all) that some writers, Windows among them, use for a file exported without a password.
///
/// ```swift
/// let pfx = try PKCS12File(bytes: fileBytes, passphrase: Passphrase(Array("export password".utf8)))
/// for bag in pfx.keys {
///     let key = try bag.privateKey()
///     if let cert = bag.certificate { print(bag.friendlyName ?? "?", cert.thumbprint) }
/// }
/// ```
public struct PKCS12File: Sendable {
    // MARK: - Limits

    /// Largest file accepted (DER, or PEM text).
    public static let maximumFileSize = Limits.maximumKeyFileSize
    /// Most iterations one KDF (PKCS#12 KDF or PBKDF2) may ask for. Writers use 1–600 000.
    public static let maximumIterations = PrivateKeyFile.maximumIterations
    /// Most iterations all the KDFs of one file may ask for together: bounds the time a hostile file can cost.
    public static let maximumTotalIterations = 3 * maximumIterations
    /// Most encrypted items (encrypted SafeContents and shrouded key bags) in one file.
    public static let maximumEncryptedItems = 64
    /// Most SafeBags in one file, all SafeContents together.
    public static let maximumBags = 1_000
    /// Deepest nesting of `safeContentsBag`s.
    public static let maximumBagNesting = 4
    /// Most attributes on one SafeBag.
    public static let maximumAttributesPerBag = 64
    /// Longest salt accepted in a `MacData` or PKCS#12 PBE parameters.
    public static let maximumSaltSize = 1_024

    // MARK: - Contents

    /// One private key of the file.
    public struct KeyBag: Sendable {
        /// The `friendlyName` attribute (Windows: the key container name).
        public let friendlyName: String?
        /// The `localKeyId` attribute, which ties a key to its certificate.
        public let localKeyID: [UInt8]?
        /// The key's certificate: the certificate bag with the same `localKeyId`, or else the first one with the
        /// same public key.
        public let certificate: CertificateBag?
        /// How the key was encrypted inside the file (`nil` for a plain `keyBag`), e.g.
        /// `pbeWithSHAAnd3-KeyTripleDES-CBC` or `PBES2 (PBKDF2-hmacWithSHA256, aes256-CBC)`.
        public let encryption: String?
        /// The key's PKCS#8 `PrivateKeyInfo` DER, in zeroing storage.
        let privateKeyInfo: SymmetricKey

        /// The key, unlocked.
        ///
        /// - Throws: ``FormatError/Code/unsupportedAlgorithm`` for keys swift-efs cannot use (RSA outside
        ///   2048–4096 bits, curves other than P-256 and P-384).
        public func privateKey() throws(FormatError) -> UserPrivateKey {
            var der = privateKeyInfo.withUnsafeBytes { Array($0) }
            defer { Zeroing.clear(&der) }
            return try UserPrivateKey.parse(der: der)
        }

        /// The key as an RSA key of 1024 bits or more (``UserPrivateKey/parseLegacyRSA(der:)``): what older Windows
        /// EFS certificates use, and all Windows EFS data needs (its FEKs are wrapped with RSA PKCS#1 v1.5).
        ///
        /// - Throws: ``FormatError/Code/unsupportedAlgorithm`` when the key is not RSA of 1024 bits or more.
        public func legacyRSAPrivateKey() throws(FormatError) -> UserPrivateKey {
            var der = privateKeyInfo.withUnsafeBytes { Array($0) }
            defer { Zeroing.clear(&der) }
            return try UserPrivateKey.parseLegacyRSA(der: der)
        }

        /// Calls `body` with the PKCS#8 `PrivateKeyInfo` DER (for keys ``privateKey()`` does not take).
        func withPrivateKeyInfo<R>(_ body: ([UInt8]) throws -> R) rethrows -> R {
            var der = privateKeyInfo.withUnsafeBytes { Array($0) }
            defer { Zeroing.clear(&der) }
            return try body(der)
        }
    }

    /// One certificate of the file.
    public struct CertificateBag: Sendable, Hashable {
        /// The certificate's DER.
        public let der: [UInt8]
        /// The `friendlyName` attribute.
        public let friendlyName: String?
        /// The `localKeyId` attribute.
        public let localKeyID: [UInt8]?
        /// SHA-1 of ``der``: what Windows calls the certificate hash and EFS stores in `$EFS`.
        public let thumbprint: Thumbprint
        let parsed: Result<EFSCertificate, FormatError>
        let publicKey: Certificate.PublicKey?

        /// The certificate as an ``EFSCertificate``.
        ///
        /// - Throws: why it cannot be one: a key type or size swift-efs does not wrap for (CA certificates in a
        ///   chain often have one), or a certificate that does not parse.
        public func efsCertificate() throws(FormatError) -> EFSCertificate { try parsed.get() }

        public static func == (a: CertificateBag, b: CertificateBag) -> Bool {
            a.der == b.der && a.friendlyName == b.friendlyName && a.localKeyID == b.localKeyID
        }
        public func hash(into h: inout Hasher) { h.combine(der) }
    }

    /// How the file's integrity was protected.
    public enum Integrity: Sendable, Hashable, CustomStringConvertible {
        /// No MAC: a wrong password shows only as undecryptable contents.
        case none
        /// `MacData` with HMAC over the named hash, keyed with the PKCS#12 KDF (RFC 7292 appendix B).
        case hmac(hash: String, iterations: Int)
        /// PBMAC1 (RFC 9579): HMAC keyed with PBKDF2.
        case pbmac1(mac: String, iterations: Int)

        public var description: String {
            switch self {
            case .none: "no MAC"
            case .hmac(let h, let i): "HMAC-\(h) (PKCS#12 KDF, \(i) iterations)"
            case .pbmac1(let m, let i): "PBMAC1 \(m) (PBKDF2, \(i) iterations)"
            }
        }
    }

    /// The private keys, in file order.
    public let keys: [KeyBag]
    /// The certificates, in file order.
    public let certificates: [CertificateBag]
    /// The integrity protection.
    public let integrity: Integrity
    /// The encryption schemes the file uses, in order of first use (see ``KeyBag/encryption``).
    public let encryptionSchemes: [String]
    /// Whether any content is protected with a legacy PKCS#12 PBE (SHA-1 KDF with 3DES or RC2): weak, and RC2-40
    /// very weak, but what Windows before 1709 and `openssl -legacy` write.
    public let usesLegacyEncryption: Bool
    /// How many bags were skipped (CRLs, secrets, unknown bag types, non-X.509 certificates).
    public let skippedBagCount: Int

    /// The certificates that are usable as ``EFSCertificate``s.
    public var efsCertificates: [EFSCertificate] { certificates.compactMap { try? $0.parsed.get() } }

    /// Reads a PKCS#12 file: DER, or PEM with a `PKCS12` (or any) block holding the DER.
    ///
    /// - Parameters:
    ///   - bytes: the file.
    ///   - passphrase: the export password.
    /// - Throws: ``FormatError/Code/authenticationFailed`` for a wrong password (the MAC does not verify, or,
    ///   without a MAC, the contents do not decrypt); `.unsupportedAlgorithm` naming the OID of a scheme that is
    ///   not supported; `.limitExceeded` for sizes, counts or iteration counts above the named maximums;
    ///   `.malformed` for anything else that is not a valid PKCS#12 file.
    public init(bytes: [UInt8], passphrase: Passphrase) throws(FormatError) {
        var pw = passphrase.withBytes { $0 }
        defer { Zeroing.clear(&pw) }
        self = try Self.read(bytes, password: pw)
    }

    /// Whether `bytes` look like a PKCS#12 file (a PFX structure, as DER or PEM), without needing the password.
    public static func isPKCS12(_ bytes: [UInt8]) -> Bool {
        guard bytes.count <= maximumFileSize, let der = try? pfxDER(bytes) else { return false }
        return (try? parseOuter(der)) != nil
    }

    private init(parsed: Parsed, integrity: Integrity) {
        var certs: [CertificateBag] = []
        for c in parsed.certificates {
            let parsedCert: Result<EFSCertificate, FormatError>
            do { parsedCert = .success(try EFSCertificate(der: c.der)) } catch { parsedCert = .failure(error) }
            let publicKey = (try? Certificate(derEncoded: c.der))?.publicKey
            certs.append(
                CertificateBag(
                    der: c.der, friendlyName: c.attributes.friendlyName, localKeyID: c.attributes.localKeyID,
                    thumbprint: Thumbprint(certificateDER: c.der), parsed: parsedCert, publicKey: publicKey))
        }
        var keys: [KeyBag] = []
        for k in parsed.keys {
            var match: CertificateBag?
            if let id = k.attributes.localKeyID {
                match = certs.first { $0.localKeyID == id }
            }
            if match == nil, let pub = k.publicKey {
                match = certs.first { $0.publicKey == pub }
            }
            keys.append(
                KeyBag(
                    friendlyName: k.attributes.friendlyName, localKeyID: k.attributes.localKeyID, certificate: match,
                    encryption: k.encryption, privateKeyInfo: k.info))
        }
        self.keys = keys
        self.certificates = certs
        self.integrity = integrity
        self.encryptionSchemes = parsed.schemes
        self.usesLegacyEncryption = parsed.usesLegacy
        self.skippedBagCount = parsed.skipped
    }
}

// MARK: - Reading

extension PKCS12File {
    static let oidData: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 7, 1]
    static let oidSignedData: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 7, 2]
    static let oidEnvelopedData: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 7, 3]
    static let oidEncryptedData: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 7, 6]
    static let oidKeyBag: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 12, 10, 1, 1]
    static let oidShroudedKeyBag: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 12, 10, 1, 2]
    static let oidCertBag: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 12, 10, 1, 3]
    static let oidSafeContentsBag: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 12, 10, 1, 6]
    static let oidX509Certificate: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 9, 22, 1]
    static let oidFriendlyName: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 9, 20]
    static let oidLocalKeyID: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 9, 21]
    static let oidPBMAC1: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 5, 14]

    /// The password in the forms the schemes want it. Its bytes are cleared when it is released.
    final class Password {
        /// RFC 7292 B.1 BMPString with NUL terminator, or empty for the "null" password.
        var bmp: [UInt8]
        /// The passphrase's bytes as given (PBES2 and PBMAC1 use them unchanged).
        var utf8: [UInt8]

        init(bmp: [UInt8], utf8: [UInt8]) {
            self.bmp = bmp
            self.utf8 = utf8
        }

        deinit {
            Zeroing.clear(&bmp)
            Zeroing.clear(&utf8)
        }

        /// The passwords to try: one, or for an empty passphrase the empty BMPString and then the null password.
        static func candidates(_ pw: [UInt8]) -> [Password] {
            if pw.isEmpty { return [Password(bmp: [0, 0], utf8: []), Password(bmp: [], utf8: [])] }
            return [Password(bmp: PKCS12KDF.bmpPassword(pw), utf8: pw)]
        }
    }

    /// The outer PFX: the AuthenticatedSafe's bytes and the MAC, if any.
    struct Outer {
        var authSafe: [UInt8]
        var mac: MacData?
    }

    /// `MacData ::= SEQUENCE { mac DigestInfo, macSalt OCTET STRING, iterations INTEGER DEFAULT 1 }` (RFC 7292 §4).
    struct MacData {
        var algorithm: ASN1ObjectIdentifier
        /// The algorithm's parameters (PBMAC1-params when `algorithm` is PBMAC1; NULL or absent otherwise).
        var parameters: ASN1Node?
        var digest: [UInt8]
        var salt: [UInt8]
        var iterations: Int
    }

    struct Attributes {
        var friendlyName: String?
        var localKeyID: [UInt8]?
    }

    struct ParsedKey {
        var info: SymmetricKey
        var attributes: Attributes
        var encryption: String?
        var publicKey: Certificate.PublicKey?
    }

    struct ParsedCertificate {
        var der: [UInt8]
        var attributes: Attributes
    }

    /// What the contents gave, and the cost bookkeeping.
    final class Parsed {
        var keys: [ParsedKey] = []
        var certificates: [ParsedCertificate] = []
        var schemes: [String] = []
        var usesLegacy = false
        var skipped = 0
        var bags = 0
        var encryptedItems = 0
        var iterations = 0

        /// Counts one KDF run of `n` iterations against the file's budget.
        func spend(_ n: Int) throws(FormatError) {
            guard n >= 1, n <= PKCS12File.maximumIterations else {
                throw .limitExceeded("PKCS#12 KDF iterations", value: UInt64(max(0, n)), maximum: PKCS12File.maximumIterations)
            }
            iterations += n
            guard iterations <= PKCS12File.maximumTotalIterations else {
                throw .limitExceeded(
                    "PKCS#12 total KDF iterations", value: UInt64(iterations), maximum: PKCS12File.maximumTotalIterations)
            }
        }

        func note(_ scheme: String, legacy: Bool) {
            if !schemes.contains(scheme) { schemes.append(scheme) }
            if legacy { usesLegacy = true }
        }
    }

    static func read(_ bytes: [UInt8], password pw: [UInt8]) throws(FormatError) -> PKCS12File {
        guard bytes.count <= maximumFileSize else {
            throw .limitExceeded("PKCS#12 file", value: UInt64(bytes.count), maximum: maximumFileSize)
        }
        let der = try pfxDER(bytes)
        let outer = try parseOuter(der)
        var candidates = Password.candidates(pw)
        var integrity = Integrity.none
        var spent = 0
        if let mac = outer.mac {
            // RFC 7292 §5.1 step 1 (inverted): check the MAC before using anything the contents say.
            var verified: [Password] = []
            for c in candidates where try verifyMAC(mac, authSafe: outer.authSafe, password: c) {
                verified.append(c)
            }
            guard !verified.isEmpty else {
                throw FormatError(
                    .authenticationFailed, "wrong password: the PKCS#12 MAC does not verify (or the file was modified)")
            }
            // For an empty passphrase, the contents are tried with the password the MAC verified with first, then
            // with the other form (a writer may mix the empty and the null password).
            candidates = verified + candidates.filter { c in !verified.contains { $0 === c } }
            integrity = try describeMAC(mac)
            switch integrity {
            case .hmac(_, let n), .pbmac1(_, let n): spent = n
            case .none: break
            }
        }
        var lastError = FormatError(.authenticationFailed, "wrong password: the PKCS#12 contents do not decrypt")
        for c in candidates {
            let result: Parsed
            do {
                result = try parseContents(outer.authSafe, password: c, spent: spent)
            } catch {
                guard error.code == .authenticationFailed else { throw error }
                if outer.mac != nil {
                    lastError = FormatError(
                        .authenticationFailed,
                        "the PKCS#12 MAC verifies but the contents do not decrypt: they may use a different password")
                }
                continue
            }
            return PKCS12File(parsed: result, integrity: integrity)
        }
        throw lastError
    }

    /// The PFX DER: the bytes themselves, or the first PEM block that holds a PFX.
    static func pfxDER(_ bytes: [UInt8]) throws(FormatError) -> [UInt8] {
        guard let text = String(validating: bytes, as: UTF8.self), text.contains("-----BEGIN") else { return bytes }
        let docs: [PEMDocument]
        do { docs = try PEMDocument.parseMultiple(pemString: text) } catch {
            throw .malformed("not valid PEM: \(error)")
        }
        if let doc = docs.first(where: { ["PKCS12", "PFX"].contains($0.discriminator) }) { return doc.derBytes }
        // certutil -encode wraps any file, a PFX too, as "CERTIFICATE".
        if let doc = docs.first(where: { (try? parseOuter($0.derBytes)) != nil }) { return doc.derBytes }
        throw .malformed("no PKCS12 block in the PEM text")
    }

    /// Maps swift-asn1's errors to ``FormatError/Code/malformed``.
    static func asn1<T>(_ what: String, _ body: () throws -> T) throws(FormatError) -> T {
        do {
            return try body()
        } catch let e as FormatError {
            throw e
        } catch {
            throw .malformed("\(what) is not valid ASN.1: \(error)")
        }
    }

    /// `PFX ::= SEQUENCE { version INTEGER {v3(3)}, authSafe ContentInfo, macData MacData OPTIONAL }` (RFC 7292 §4).
    static func parseOuter(_ der: [UInt8]) throws(FormatError) -> Outer {
        try asn1("PKCS#12 file") {
            let root = try BER.parse(der)
            return try BER.sequence(root, identifier: .sequence) { pfx in
                guard let versionNode = pfx.next(), let authSafeNode = pfx.next() else {
                    throw FormatError.malformed("PFX has too few fields")
                }
                let version = try Int(berEncoded: versionNode)
                guard version == 3 else {
                    throw FormatError(.unsupportedVersion, "PFX version \(version) is not 3")
                }
                // authSafe ContentInfo: `data` in password integrity mode; `signedData` is public-key mode.
                let (type, content) = try parseContentInfo(authSafeNode)
                guard type == oidData else {
                    throw FormatError(
                        .unsupportedAlgorithm,
                        "PFX integrity mode \(AlgorithmNames.name(type)) is not supported (only password integrity)")
                }
                guard let content else { throw FormatError.malformed("PFX authSafe has no content") }
                let authSafe = Array(try ASN1OctetString(berEncoded: content).bytes)
                var mac: MacData?
                if let macNode = pfx.next() { mac = try parseMacData(macNode) }
                guard pfx.next() == nil else { throw FormatError.malformed("PFX has extra fields") }
                return Outer(authSafe: authSafe, mac: mac)
            }
        }
    }

    /// `ContentInfo ::= SEQUENCE { contentType OID, content [0] EXPLICIT ANY DEFINED BY contentType OPTIONAL }`
    /// (RFC 5652 §3).
    static func parseContentInfo(_ node: ASN1Node) throws -> (ASN1ObjectIdentifier, ASN1Node?) {
        try BER.sequence(node, identifier: .sequence) { ci in
            guard let typeNode = ci.next() else { throw FormatError.malformed("ContentInfo is empty") }
            let type = try ASN1ObjectIdentifier(berEncoded: typeNode)
            var content: ASN1Node?
            if let tagged = ci.next() {
                content = try BER.explicitlyTagged(tagged, tagNumber: 0, tagClass: .contextSpecific) { $0 }
            }
            guard ci.next() == nil else { throw FormatError.malformed("ContentInfo has extra fields") }
            return (type, content)
        }
    }

    static func parseMacData(_ node: ASN1Node) throws -> MacData {
        try BER.sequence(node, identifier: .sequence) { m in
            guard let digestInfo = m.next(), let saltNode = m.next() else {
                throw FormatError.malformed("MacData has too few fields")
            }
            // DigestInfo ::= SEQUENCE { digestAlgorithm AlgorithmIdentifier, digest OCTET STRING }
            let (algorithm, parameters, digest) = try BER.sequence(digestInfo, identifier: .sequence) { d in
                guard let algNode = d.next(), let digestNode = d.next(), d.next() == nil else {
                    throw FormatError.malformed("MacData DigestInfo is malformed")
                }
                let (oid, params) = try BER.sequence(algNode, identifier: .sequence) { a in
                    guard let o = a.next() else { throw FormatError.malformed("MAC algorithm is empty") }
                    let params = a.next()
                    guard a.next() == nil else { throw FormatError.malformed("MAC algorithm has extra fields") }
                    return (try ASN1ObjectIdentifier(berEncoded: o), params)
                }
                return (oid, params, Array(try ASN1OctetString(berEncoded: digestNode).bytes))
            }
            let salt = Array(try ASN1OctetString(berEncoded: saltNode).bytes)
            var iterations = 1
            if let iterNode = m.next() { iterations = try Int(berEncoded: iterNode) }
            guard m.next() == nil else { throw FormatError.malformed("MacData has extra fields") }
            guard salt.count <= maximumSaltSize else {
                throw FormatError.limitExceeded("MacData salt", value: UInt64(salt.count), maximum: maximumSaltSize)
            }
            guard (1...maximumIterations).contains(iterations) else {
                throw FormatError.limitExceeded("MacData iterations", value: UInt64(max(0, iterations)), maximum: maximumIterations)
            }
            return MacData(algorithm: algorithm, parameters: parameters, digest: digest, salt: salt, iterations: iterations)
        }
    }

    // MARK: - Contents

    /// `AuthenticatedSafe ::= SEQUENCE OF ContentInfo` (RFC 7292 §4.1): `data` holds SafeContents in the clear,
    /// `encryptedData` (RFC 5652 §8) holds them encrypted with a password-based scheme.
    ///
    /// - Parameter spent: the KDF iterations the MAC already cost, counted against ``maximumTotalIterations``.
    static func parseContents(_ authSafe: [UInt8], password: Password, spent: Int) throws(FormatError) -> Parsed {
        let parsed = Parsed()
        parsed.iterations = spent
        try asn1("PKCS#12 AuthenticatedSafe") {
            let root = try BER.parse(authSafe)
            try BER.sequence(root, identifier: .sequence) { infos in
                while let info = infos.next() {
                    let (type, content) = try parseContentInfo(info)
                    guard let content else { throw FormatError.malformed("AuthenticatedSafe ContentInfo has no content") }
                    switch type {
                    case oidData:
                        let safeContents = Array(try ASN1OctetString(berEncoded: content).bytes)
                        try parseSafeContents(safeContents, depth: 0, password: password, into: parsed)
                    case oidEncryptedData:
                        var plain = try decryptEncryptedData(content, password: password, into: parsed)
                        defer { Zeroing.clear(&plain) }
                        try parseSafeContents(plain, depth: 0, password: password, into: parsed)
                    default:
                        throw FormatError(
                            .unsupportedAlgorithm,
                            "PKCS#12 content type \(AlgorithmNames.name(type)) is not supported (only password privacy)")
                    }
                }
            }
        }
        return parsed
    }

    /// `EncryptedData ::= SEQUENCE { version, EncryptedContentInfo, unprotectedAttrs [1] IMPLICIT OPTIONAL }`,
    /// `EncryptedContentInfo ::= SEQUENCE { contentType, contentEncryptionAlgorithm,
    /// encryptedContent [0] IMPLICIT OCTET STRING OPTIONAL }` (RFC 5652 §8, §6.1).
    static func decryptEncryptedData(_ node: ASN1Node, password: Password, into parsed: Parsed) throws -> [UInt8] {
        let (algorithm, ciphertext) = try BER.sequence(node, identifier: .sequence) { ed -> (ASN1Node, [UInt8]) in
            guard let versionNode = ed.next(), let eciNode = ed.next() else {
                throw FormatError.malformed("EncryptedData has too few fields")
            }
            _ = try Int(berEncoded: versionNode)
            // unprotectedAttrs [1], if any, are ignored.
            defer { while ed.next() != nil {} }
            return try BER.sequence(eciNode, identifier: .sequence) { eci in
                guard let typeNode = eci.next(), let algNode = eci.next() else {
                    throw FormatError.malformed("EncryptedContentInfo has too few fields")
                }
                guard try ASN1ObjectIdentifier(berEncoded: typeNode) == oidData else {
                    throw FormatError.malformed("EncryptedContentInfo does not hold data")
                }
                guard let contentNode = eci.next() else { throw FormatError.malformed("EncryptedContentInfo has no content") }
                let ct = try ASN1OctetString(
                    berEncoded: contentNode, withIdentifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific))
                guard eci.next() == nil else { throw FormatError.malformed("EncryptedContentInfo has extra fields") }
                return (algNode, Array(ct.bytes))
            }
        }
        return try decrypt(ciphertext, algorithm: algorithm, password: password, into: parsed).plain
    }

    /// `SafeContents ::= SEQUENCE OF SafeBag`,
    /// `SafeBag ::= SEQUENCE { bagId OID, bagValue [0] EXPLICIT ANY, bagAttributes SET OF PKCS12Attribute OPTIONAL }`
    /// (RFC 7292 §4.2).
    static func parseSafeContents(_ der: [UInt8], depth: Int, password: Password, into parsed: Parsed) throws {
        guard depth <= maximumBagNesting else {
            throw FormatError.limitExceeded("safeContentsBag nesting", value: UInt64(depth), maximum: maximumBagNesting)
        }
        let root = try BER.parse(der)
        try parseSafeContents(root, depth: depth, password: password, into: parsed)
    }

    static func parseSafeContents(_ root: ASN1Node, depth: Int, password: Password, into parsed: Parsed) throws {
        guard depth <= maximumBagNesting else {
            throw FormatError.limitExceeded("safeContentsBag nesting", value: UInt64(depth), maximum: maximumBagNesting)
        }
        try BER.sequence(root, identifier: .sequence) { bags in
            while let bag = bags.next() {
                parsed.bags += 1
                guard parsed.bags <= maximumBags else {
                    throw FormatError.limitExceeded("PKCS#12 bags", value: UInt64(parsed.bags), maximum: maximumBags)
                }
                try parseSafeBag(bag, depth: depth, password: password, into: parsed)
            }
        }
    }

    static func parseSafeBag(_ node: ASN1Node, depth: Int, password: Password, into parsed: Parsed) throws {
        try BER.sequence(node, identifier: .sequence) { bag in
            guard let idNode = bag.next(), let tagged = bag.next() else {
                throw FormatError.malformed("SafeBag has too few fields")
            }
            let bagID = try ASN1ObjectIdentifier(berEncoded: idNode)
            let value = try BER.explicitlyTagged(tagged, tagNumber: 0, tagClass: .contextSpecific) { $0 }
            var attributes = Attributes()
            if let attrNode = bag.next() { attributes = try parseAttributes(attrNode) }
            guard bag.next() == nil else { throw FormatError.malformed("SafeBag has extra fields") }
            switch bagID {
            case oidKeyBag:
                // KeyBag ::= PrivateKeyInfo
                try addKey(Array(value.encodedBytes), attributes: attributes, encryption: nil, into: parsed)
            case oidShroudedKeyBag:
                // PKCS8ShroudedKeyBag ::= EncryptedPrivateKeyInfo { encryptionAlgorithm, encryptedData OCTET STRING }
                let (algorithm, ciphertext) = try BER.sequence(value, identifier: .sequence) { e -> (ASN1Node, [UInt8]) in
                    guard let alg = e.next(), let data = e.next(), e.next() == nil else {
                        throw FormatError.malformed("EncryptedPrivateKeyInfo has the wrong number of fields")
                    }
                    return (alg, Array(try ASN1OctetString(berEncoded: data).bytes))
                }
                var (plain, scheme) = try decrypt(ciphertext, algorithm: algorithm, password: password, into: parsed)
                defer { Zeroing.clear(&plain) }
                try addKey(plain, attributes: attributes, encryption: scheme, into: parsed)
            case oidCertBag:
                // CertBag ::= SEQUENCE { certId OID, certValue [0] EXPLICIT ANY }; x509Certificate: OCTET STRING.
                let der = try BER.sequence(value, identifier: .sequence) { c -> [UInt8]? in
                    guard let typeNode = c.next(), let certTagged = c.next(), c.next() == nil else {
                        throw FormatError.malformed("CertBag is malformed")
                    }
                    guard try ASN1ObjectIdentifier(berEncoded: typeNode) == oidX509Certificate else { return nil }
                    let certNode = try BER.explicitlyTagged(certTagged, tagNumber: 0, tagClass: .contextSpecific) { $0 }
                    return Array(try ASN1OctetString(berEncoded: certNode).bytes)
                }
                if let der {
                    guard der.count <= Limits.maximumKeyFileSize else { throw FormatError.malformed("certificate is too large") }
                    parsed.certificates.append(ParsedCertificate(der: der, attributes: attributes))
                } else {
                    parsed.skipped += 1
                }
            case oidSafeContentsBag:
                try parseSafeContents(value, depth: depth + 1, password: password, into: parsed)
            default:
                // crlBag, secretBag and bag types we do not know (RFC 7292 §4.2: the set is extensible).
                parsed.skipped += 1
            }
        }
    }

    /// `PKCS12Attribute ::= SEQUENCE { attrId OID, attrValues SET OF ANY }`; we read `friendlyName` (BMPString)
    /// and `localKeyId` (OCTET STRING), the first value of each.
    static func parseAttributes(_ node: ASN1Node) throws -> Attributes {
        var out = Attributes()
        var count = 0
        try BER.set(node, identifier: .set) { attrs in
            while let attr = attrs.next() {
                count += 1
                guard count <= maximumAttributesPerBag else {
                    throw FormatError.limitExceeded("SafeBag attributes", value: UInt64(count), maximum: maximumAttributesPerBag)
                }
                try BER.sequence(attr, identifier: .sequence) { a in
                    guard let idNode = a.next(), let valuesNode = a.next(), a.next() == nil else {
                        throw FormatError.malformed("SafeBag attribute is malformed")
                    }
                    let id = try ASN1ObjectIdentifier(berEncoded: idNode)
                    try BER.set(valuesNode, identifier: .set) { values in
                        defer { while values.next() != nil {} }
                        guard let first = values.next() else { return }
                        // Values of another type than RFC 7292 gives them are ignored, not refused: the attributes
                        // only describe the bag.
                        switch (id, first.identifier) {
                        case (oidFriendlyName, .bmpString) where out.friendlyName == nil:
                            out.friendlyName = bmpString(Array(try ASN1BMPString(berEncoded: first).bytes))
                        case (oidFriendlyName, .utf8String) where out.friendlyName == nil:
                            out.friendlyName = String(try ASN1UTF8String(berEncoded: first))
                        case (oidLocalKeyID, .octetString) where out.localKeyID == nil:
                            out.localKeyID = Array(try ASN1OctetString(berEncoded: first).bytes)
                        default:
                            break
                        }
                    }
                }
            }
        }
        return out
    }

    /// A BMPString (UTF-16BE) as a String; unpaired surrogates become U+FFFD. A trailing NUL is dropped.
    static func bmpString(_ bytes: [UInt8]) -> String {
        var units = stride(from: 0, to: bytes.count - 1, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) }
        if units.last == 0 { units.removeLast() }
        return String(decoding: units, as: UTF16.self)
    }

    /// Checks that `plain` is a PKCS#8 `PrivateKeyInfo` and keeps it.
    ///
    /// `PrivateKeyInfo ::= SEQUENCE { version INTEGER, privateKeyAlgorithm AlgorithmIdentifier,
    /// privateKey OCTET STRING, … }` (RFC 5958 §2).
    static func addKey(_ plain: [UInt8], attributes: Attributes, encryption: String?, into parsed: Parsed) throws {
        let wellFormed: Bool
        do {
            let root = try DER.parse(plain)
            wellFormed = try DER.sequence(root, identifier: .sequence) { k in
                guard let v = k.next(), let alg = k.next(), let key = k.next() else { return false }
                _ = try Int(derEncoded: v)
                let algorithmOK = try DER.sequence(alg, identifier: .sequence) { a in
                    guard let o = a.next() else { return false }
                    _ = try ASN1ObjectIdentifier(derEncoded: o)
                    while a.next() != nil {}  // the algorithm's parameters
                    return true
                }
                guard algorithmOK else { return false }
                while k.next() != nil {}  // attributes [0], publicKey [1] (RFC 5958)
                _ = try ASN1OctetString(derEncoded: key)
                return true
            }
        } catch {
            wellFormed = false
        }
        guard wellFormed else {
            // A shrouded key that does not parse after decryption: the padding passed by chance with a wrong
            // password (there was no MAC), or the file is damaged.
            if encryption != nil { throw FormatError(.authenticationFailed, "wrong password: a key does not decrypt") }
            throw FormatError.malformed("a PKCS#12 keyBag is not a PKCS#8 PrivateKeyInfo")
        }
        parsed.keys.append(
            ParsedKey(
                info: SymmetricKey(data: plain), attributes: attributes, encryption: encryption,
                publicKey: publicKey(ofPrivateKeyInfo: plain)))
    }

    /// The public key of a PKCS#8 RSA, P-256 or P-384 key, for pairing it with its certificate.
    static func publicKey(ofPrivateKeyInfo der: [UInt8]) -> Certificate.PublicKey? {
        if let k = try? _RSA.Signing.PrivateKey(unsafeDERRepresentation: der) { return Certificate.PublicKey(k.publicKey) }
        if let k = try? P256.Signing.PrivateKey(derRepresentation: der) { return Certificate.PublicKey(k.publicKey) }
        if let k = try? P384.Signing.PrivateKey(derRepresentation: der) { return Certificate.PublicKey(k.publicKey) }
        return nil
    }
}
