// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Crypto
import Foundation
import SwiftASN1
import X509
import _CryptoExtras

/// A user's or recovery agent's unlocked private key.
///
/// The key objects live in BoringSSL, which clears them when freed. The type is `~Copyable` so an unlocked key has
/// one owner and a clear end of life, and there is no way to print it.
public struct UserPrivateKey: ~Copyable, Sendable {
    // BoringSSL key objects are immutable once made and their private operations are thread-safe.
    enum Storage: @unchecked Sendable {
        case rsa(_RSA.Encryption.PrivateKey)
        case p256(P256.KeyAgreement.PrivateKey)
        case p384(P384.KeyAgreement.PrivateKey)
    }
    let storage: Storage

    init(_ storage: Storage) { self.storage = storage }

    /// The kinds of key `efs key new` makes.
    public enum Kind: Sendable, Hashable, CustomStringConvertible {
        case p256, p384, rsa(bits: Int)
        public var description: String {
            switch self {
            case .p256: "EC P-256"
            case .p384: "EC P-384"
            case .rsa(let bits): "RSA \(bits)"
            }
        }
    }

    /// Generates a new key.
    public static func generate(_ kind: Kind) throws(FormatError) -> UserPrivateKey {
        switch kind {
        case .p256: return UserPrivateKey(.p256(P256.KeyAgreement.PrivateKey()))
        case .p384: return UserPrivateKey(.p384(P384.KeyAgreement.PrivateKey()))
        case .rsa(let bits):
            let size: _RSA.Signing.KeySize
            switch bits {
            case 2048: size = .bits2048
            case 3072: size = .bits3072
            case 4096: size = .bits4096
            default: throw FormatError(.unsupportedAlgorithm, "RSA keys must be 2048, 3072 or 4096 bits")
            }
            do {
                return UserPrivateKey(.rsa(try _RSA.Encryption.PrivateKey(keySize: size)))
            } catch {
                throw FormatError(.unsupportedAlgorithm, "RSA key generation failed: \(error)")
            }
        }
    }

    /// PKCS#8 `PrivateKeyInfo` DER, the form openssl reads.
    public func pkcs8DER() -> [UInt8] {
        switch storage {
        case .rsa(let k):
            // Invariant: a key we hold always re-encodes. `unsafe…`: legacy (Windows) RSA keys may be 1024 bits.
            let signing = try! _RSA.Signing.PrivateKey(unsafeDERRepresentation: k.derRepresentation)
            return Array(signing.pkcs8DERRepresentation)
        case .p256(let k): return Array(k.derRepresentation)
        case .p384(let k): return Array(k.derRepresentation)
        }
    }

    /// Parses an unencrypted private key: PKCS#8 DER, or PEM `PRIVATE KEY`, `EC PRIVATE KEY` or `RSA PRIVATE KEY`.
    public static func parse(der: [UInt8]) throws(FormatError) -> UserPrivateKey {
        if let k = try? P256.KeyAgreement.PrivateKey(derRepresentation: der) { return UserPrivateKey(.p256(k)) }
        if let k = try? P384.KeyAgreement.PrivateKey(derRepresentation: der) { return UserPrivateKey(.p384(k)) }
        if let k = try? _RSA.Encryption.PrivateKey(derRepresentation: der) {
            guard (2048...4096).contains(k.keySizeInBits) else {
                throw FormatError(.unsupportedAlgorithm, "RSA key of \(k.keySizeInBits) bits: use 2048–4096")
            }
            return UserPrivateKey(.rsa(k))
        }
        throw FormatError(.unsupportedAlgorithm, "not a supported private key (RSA 2048–4096, EC P-256 or P-384)")
    }

    /// A `Certificate.PrivateKey` for signing a self-signed certificate.
    func certificateSigningKey() -> Certificate.PrivateKey {
        switch storage {
        case .rsa(let k): return Certificate.PrivateKey(try! _RSA.Signing.PrivateKey(unsafeDERRepresentation: k.derRepresentation))
        case .p256(let k): return Certificate.PrivateKey(try! P256.Signing.PrivateKey(rawRepresentation: k.rawRepresentation))
        case .p384(let k): return Certificate.PrivateKey(try! P384.Signing.PrivateKey(rawRepresentation: k.rawRepresentation))
        }
    }

    /// Whether this key is the private half of `cert`'s public key.
    public func matches(_ cert: EFSCertificate) -> Bool {
        certificateSigningKey().publicKey == cert.certificate.publicKey
    }

    // MARK: - Unwrapping

    /// Unwraps the FEK in `entry`.
    ///
    /// - Throws: ``FormatError/authenticationFailed`` when the key does not fit the entry or the wrapped key was
    ///   modified. The reason is not distinguished further.
    public func unwrap(_ entry: KeyEntry, fileID: FileID) throws(FormatError) -> FileEncryptionKey {
        let raw: Data
        do {
            switch (storage, entry.algorithm) {
            case (.rsa(let k), .rsaOAEPSHA256):
                raw = try k.decrypt(entry.wrappedKey, padding: .PKCS1_OAEP_SHA256)
            case (.p256(let k), .hpkeP256):
                raw = try Self.hpkeOpen(entry.wrappedKey, encSize: 65, key: k, suite: .P256_SHA256_AES_GCM_256, fileID: fileID)
            case (.p384(let k), .hpkeP384):
                raw = try Self.hpkeOpen(entry.wrappedKey, encSize: 97, key: k, suite: .P384_SHA384_AES_GCM_256, fileID: fileID)
            case (.p256(let k), .hpkeP256Shared):
                raw = try Self.hpkeOpenShared(entry.wrappedKey, encSize: 65, key: k, suite: .P256_SHA256_AES_GCM_256, fileID: fileID)
            case (.p384(let k), .hpkeP384Shared):
                raw = try Self.hpkeOpenShared(entry.wrappedKey, encSize: 97, key: k, suite: .P384_SHA384_AES_GCM_256, fileID: fileID)
            default:
                throw FormatError.authenticationFailed
            }
        } catch {
            throw .authenticationFailed
        }
        return try FileEncryptionKey(unwrapped: raw, fileID: fileID)
    }

    private static func hpkeOpen<SK: HPKEDiffieHellmanPrivateKey>(
        _ wrapped: [UInt8], encSize: Int, key: SK, suite: HPKE.Ciphersuite, fileID: FileID
    ) throws -> Data {
        guard wrapped.count > encSize else { throw FormatError.authenticationFailed }
        var r = try HPKE.Recipient(
            privateKey: key, ciphersuite: suite, info: Data(KeyLabels.hpkeWrapInfo),
            encapsulatedKey: Data(wrapped[0..<encSize]))
        return try r.open(wrapped[encSize...], authenticating: fileID.bytes)
    }

    /// Algorithms 4 and 5 (``SharedEncapsulation``): `enc ‖ wrap id ‖ ciphertext ‖ tag`, the key from the context's
    /// exporter.
    private static func hpkeOpenShared<SK: HPKEDiffieHellmanPrivateKey>(
        _ wrapped: [UInt8], encSize: Int, key: SK, suite: HPKE.Ciphersuite, fileID: FileID
    ) throws -> Data {
        guard wrapped.count == SharedEncapsulation.wrappedSize(encSize: encSize) else { throw FormatError.authenticationFailed }
        let idEnd = encSize + SharedEncapsulation.wrapIDSize
        let r = try HPKE.Recipient(
            privateKey: key, ciphersuite: suite, info: Data(KeyLabels.hpkeSharedWrapInfo),
            encapsulatedKey: Data(wrapped[0..<encSize]))
        let wrapKey = try r.exportSecret(context: fileID.bytes + wrapped[encSize..<idEnd], outputByteCount: 32)
        let box = try AES.GCM.SealedBox(nonce: SharedEncapsulation.zeroNonce, ciphertext: wrapped[idEnd..<(idEnd + 32)],
                                        tag: wrapped[(idEnd + 32)...])
        return try AES.GCM.open(box, using: wrapKey, authenticating: fileID.bytes)
    }
}
