// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Crypto
import Foundation
import SwiftASN1
import X509
import _CryptoExtras

/// An X.509 certificate that a FEK can be wrapped for: a user's EFS certificate or a recovery agent's.
///
/// Supported public keys: RSA 2048–4096 (FEK wrapped with RSA-OAEP-SHA256) and EC P-256/P-384 (FEK wrapped with
/// HPKE, RFC 9180). Certificates from an enterprise CA work as long as their key is one of these.
///
/// ```swift
/// let cert = try EFSCertificate(pem: text)
/// print(cert.displayName, cert.thumbprint)
/// ```
public struct EFSCertificate: Sendable, Hashable {
    /// Extended key usage "Encrypting File System" (szOID_EFS_CRYPTO).
    public static let efsUsageOID: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 311, 10, 3, 4]
    /// Extended key usage "File Recovery" (szOID_EFS_RECOVERY).
    public static let recoveryUsageOID: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 311, 10, 3, 4, 1]

    public let der: [UInt8]
    public let certificate: Certificate
    public let thumbprint: Thumbprint
    public let algorithm: WrapAlgorithm
    /// The public key in the form ``wrap(_:)`` uses, parsed once.
    fileprivate let wrapKey: WrapKey

    fileprivate enum WrapKey: Sendable {
        /// The key's DER (`_RSA.Encryption.PublicKey` is not Sendable; parsing it is cheap next to the encryption).
        case rsa([UInt8])
        /// The key and its uncompressed point (HPKE's `pkRm`).
        case p256(P256.KeyAgreement.PublicKey, [UInt8])
        case p384(P384.KeyAgreement.PublicKey, [UInt8])
    }

    public init(der: some Collection<UInt8>) throws(FormatError) {
        let bytes = Array(der)
        guard !bytes.isEmpty, bytes.count <= Limits.maximumCertificateSize else {
            throw .limitExceeded("certificate", value: UInt64(bytes.count), maximum: Limits.maximumCertificateSize)
        }
        let cert: Certificate
        do { cert = try Certificate(derEncoded: bytes) } catch {
            throw .malformed("not a valid X.509 certificate: \(error)")
        }
        self.der = bytes
        self.certificate = cert
        self.thumbprint = Thumbprint(certificateDER: bytes)
        do {
            if let rsa = _RSA.Signing.PublicKey(cert.publicKey) {
                guard (2048...4096).contains(rsa.keySizeInBits) else {
                    throw FormatError(.unsupportedAlgorithm, "RSA key of \(rsa.keySizeInBits) bits: use 2048–4096")
                }
                self.algorithm = .rsaOAEPSHA256
                self.wrapKey = .rsa(Array(rsa.derRepresentation))
            } else if let ec = P256.Signing.PublicKey(cert.publicKey) {
                self.algorithm = .hpkeP256
                let key = try P256.KeyAgreement.PublicKey(rawRepresentation: ec.rawRepresentation)
                self.wrapKey = .p256(key, Array(key.x963Representation))
            } else if let ec = P384.Signing.PublicKey(cert.publicKey) {
                self.algorithm = .hpkeP384
                let key = try P384.KeyAgreement.PublicKey(rawRepresentation: ec.rawRepresentation)
                self.wrapKey = .p384(key, Array(key.x963Representation))
            } else {
                throw FormatError(.unsupportedAlgorithm, "certificate key type is not supported (use RSA, P-256 or P-384)")
            }
        } catch let error as FormatError {
            throw error
        } catch {
            throw FormatError(.unsupportedAlgorithm, "certificate key cannot be used: \(error)")
        }
    }

    /// Parses the first `CERTIFICATE` in a PEM text, or DER bytes.
    public init(pemOrDER bytes: [UInt8]) throws(FormatError) {
        try self.init(der: Self.derBytes(pemOrDER: bytes))
    }

    /// The DER of the first `CERTIFICATE` in a PEM text, or `bytes` themselves when they are not PEM. Not parsed
    /// further (Windows EFS certificates with 1024-bit RSA keys are not ``EFSCertificate``s, but have thumbprints).
    public static func derBytes(pemOrDER bytes: [UInt8]) throws(FormatError) -> [UInt8] {
        guard bytes.count <= Limits.maximumKeyFileSize else {
            throw .limitExceeded("certificate file", value: UInt64(bytes.count), maximum: Limits.maximumKeyFileSize)
        }
        guard let text = String(validating: bytes, as: UTF8.self), text.contains("-----BEGIN") else { return bytes }
        let docs: [PEMDocument]
        do { docs = try PEMDocument.parseMultiple(pemString: text) } catch {
            throw .malformed("not valid PEM: \(error)")
        }
        guard let doc = docs.first(where: { $0.discriminator == "CERTIFICATE" }) else {
            throw .malformed("no CERTIFICATE block in the PEM text")
        }
        return doc.derBytes
    }

    public var pem: String {
        PEMDocument(type: "CERTIFICATE", derBytes: der).pemString + "\n"
    }

    /// The subject's common name, or the whole subject when it has none.
    public var displayName: String {
        for rdn in certificate.subject {
            for attr in rdn where attr.type == .RDNAttributeType.commonName {
                return attr.value.description
            }
        }
        return certificate.subject.description
    }

    /// Whether the certificate carries the File Recovery extended key usage.
    public var isRecoveryAgent: Bool {
        guard let eku = try? certificate.extensions.extendedKeyUsage else { return false }
        return eku.contains(ExtendedKeyUsage.Usage(oid: Self.recoveryUsageOID))
    }

    public var notValidAfter: Date { certificate.notValidAfter }

    public static func == (a: EFSCertificate, b: EFSCertificate) -> Bool { a.der == b.der }
    public func hash(into h: inout Hasher) { h.combine(der) }

    // MARK: - Wrapping

    /// Wraps `fek` for this certificate's public key and returns the DDF/DRF entry.
    public func wrap(_ fek: FileEncryptionKey) throws(FormatError) -> KeyEntry {
        let wrapped: [UInt8]
        do {
            wrapped = try fek.key.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws -> [UInt8] in
                // Invariant: `raw` is the 32-byte FEK and does not escape this closure.
                switch wrapKey {
                case .rsa(let der):
                    let pub = try _RSA.Encryption.PublicKey(derRepresentation: der)
                    return Array(try pub.encrypt(raw, padding: .PKCS1_OAEP_SHA256))
                case .p256(let pub, let point):
                    return try HPKESeal.sealP256(raw, for: pub, recipientX963: point, info: KeyLabels.hpkeWrapInfo, aad: fek.fileID.bytes)
                case .p384(let pub, let point):
                    return try HPKESeal.sealP384(raw, for: pub, recipientX963: point, info: KeyLabels.hpkeWrapInfo, aad: fek.fileID.bytes)
                }
            }
        } catch {
            throw FormatError(.unsupportedAlgorithm, "cannot wrap a key for \(displayName): \(error)")
        }
        return KeyEntry(algorithm: algorithm, thumbprint: thumbprint, certificateDER: der, wrappedKey: wrapped)
    }
}

extension EFSCertificate {
    /// A new shared encapsulation to this certificate's key, for wrapping many FEKs (``SharedEncapsulation``), or
    /// nil for an RSA key (an RSA wrap is one public-key operation already).
    public func sharedEncapsulation() throws(FormatError) -> SharedEncapsulation? {
        try sharedEncapsulation(ephemeralScalar: nil)
    }

    /// `ephemeralScalar` fixed: known-answer tests only.
    func sharedEncapsulation(ephemeralScalar: [UInt8]?) throws(FormatError) -> SharedEncapsulation? {
        do {
            switch wrapKey {
            case .rsa: return nil
            case .p256(let pub, let point):
                let (enc, secret) = try HPKESeal.setUpP256(for: pub, recipientX963: point, info: KeyLabels.hpkeSharedWrapInfo,
                                                           ephemeralScalar: ephemeralScalar)
                return SharedEncapsulation(certificate: self, curve: .p256, enc: enc, exporterSecret: secret)
            case .p384(let pub, let point):
                let (enc, secret) = try HPKESeal.setUpP384(for: pub, recipientX963: point, info: KeyLabels.hpkeSharedWrapInfo,
                                                           ephemeralScalar: ephemeralScalar)
                return SharedEncapsulation(certificate: self, curve: .p384, enc: enc, exporterSecret: secret)
            }
        } catch {
            throw FormatError(.unsupportedAlgorithm, "cannot wrap a key for \(displayName): \(error)")
        }
    }
}

extension KeyEntry {
    /// The entry's certificate, parsed. Throws if the stored DER is not a usable certificate.
    public func certificate() throws(FormatError) -> EFSCertificate { try EFSCertificate(der: certificateDER) }

    /// A human name for the entry: the certificate's common name, or "?" if it cannot be parsed.
    public var displayName: String { (try? certificate().displayName) ?? "?" }
}
