// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Crypto
import Foundation

/// One HPKE encapsulation to an EC recipient from which many FEKs are wrapped: wrap algorithms 4 (P-256) and 5
/// (P-384), file-format.md §4.3.
///
/// An HPKE encapsulation costs two scalar multiplications (the ephemeral key and the Diffie-Hellman). Wrapping each
/// new file's FEK with its own encapsulation (algorithms 2 and 3) made that the largest cost of creating a file
/// through the mount. Here the sender context is set up once and each FEK gets its own AEAD key from the context's
/// exporter (RFC 9180 §5.3, which exists to derive many independent secrets from one context):
///
/// ```
/// wrap id   = 16 random bytes, new for every wrap
/// key       = Export(exporter_context = file id ‖ wrap id, L = 32)
/// wrapped   = enc ‖ wrap id ‖ AES-256-GCM(key, nonce = 12 zero bytes, aad = file id, FEK) ‖ tag
/// ```
///
/// Each key encrypts one message (a fresh wrap id for every wrap, so the zero nonce is never reused under one
/// key). The receiver opens it with swift-crypto's `HPKE.Recipient` and `exportSecret(context:outputByteCount:)`
/// (``UserPrivateKey/unwrap(_:fileID:)``). What sharing costs: the files wrapped from one encapsulation carry the
/// same `enc`, so someone reading the backing files can tell that they were made by one session within a short
/// time (threat-model.md). The exporter secret lives in memory, zeroed when released, as long as this object.
public final class SharedEncapsulation: Sendable {
    public let certificate: EFSCertificate
    let enc: [UInt8]
    private let exporterSecret: SymmetricKey
    private let curve: Curve

    enum Curve: Sendable { case p256, p384 }

    /// Made by ``EFSCertificate/sharedEncapsulation()``.
    init(certificate: EFSCertificate, curve: Curve, enc: [UInt8], exporterSecret: SymmetricKey) {
        self.certificate = certificate
        self.curve = curve
        self.enc = enc
        self.exporterSecret = exporterSecret
    }

    /// The algorithm of the entries this makes.
    public var algorithm: WrapAlgorithm { curve == .p256 ? .hpkeP256Shared : .hpkeP384Shared }

    /// Wraps `fek` and returns the DDF/DRF entry.
    public func wrap(_ fek: FileEncryptionKey) throws(FormatError) -> KeyEntry {
        try wrap(fek, wrapID: nil)
    }

    /// `wrapID` fixed: known-answer tests only.
    func wrap(_ fek: FileEncryptionKey, wrapID fixed: [UInt8]?) throws(FormatError) -> KeyEntry {
        var wrapID = [UInt8](repeating: 0, count: Self.wrapIDSize)
        if let fixed {
            precondition(fixed.count == Self.wrapIDSize)
            wrapID = fixed
        } else {
            wrapID.withUnsafeMutableBytes { AESGCMContext.randomBytes($0) }
        }
        let context = fek.fileID.bytes + wrapID
        let key = switch curve {
        case .p256: HPKESeal.export(SHA256.self, kemID: 0x0010, kdfID: 0x0001, exporterSecret: exporterSecret, context: context, count: 32)
        case .p384: HPKESeal.export(SHA384.self, kemID: 0x0011, kdfID: 0x0002, exporterSecret: exporterSecret, context: context, count: 32)
        }
        let box: AES.GCM.SealedBox
        do {
            box = try fek.key.withUnsafeBytes { raw in
                // Invariant: `raw` is the 32-byte FEK and does not escape this closure.
                try AES.GCM.seal(raw, using: key, nonce: Self.zeroNonce, authenticating: fek.fileID.bytes)
            }
        } catch {
            throw FormatError(.unsupportedAlgorithm, "cannot wrap a key for \(certificate.displayName): \(error)")
        }
        return KeyEntry(algorithm: algorithm, thumbprint: certificate.thumbprint, certificateDER: certificate.der,
                        wrappedKey: enc + wrapID + Array(box.ciphertext) + Array(box.tag))
    }

    static let wrapIDSize = 16
    /// The nonce of every wrap: each key encrypts exactly one FEK.
    static let zeroNonce = try! AES.GCM.Nonce(data: [UInt8](repeating: 0, count: 12))

    /// `W` for an `enc` of `encSize` bytes: enc, wrap id, the 32-byte FEK and the 16-byte tag.
    static func wrappedSize(encSize: Int) -> Int { encSize + wrapIDSize + 32 + 16 }
}
