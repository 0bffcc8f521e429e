// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Crypto
import SwiftASN1

// Internal helpers for the test target (`@testable import EFSCore`), so tests need not import swift-crypto.

/// SHA-256 of `bytes`.
func _sha256(_ bytes: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: bytes)) }

enum PEMBlocks {
    /// The DER bytes of the first PEM block in `pem`.
    static func der(_ pem: String) -> [UInt8]? { (try? PEMDocument(pemString: pem))?.derBytes }
}

/// ``HPKESeal`` for a P-256 recipient given as its uncompressed point, with a fixed ephemeral scalar (known-answer
/// tests).
func _hpkeSealP256(recipientX963: [UInt8], ephemeralScalar: [UInt8], info: [UInt8], aad: [UInt8], plaintext: [UInt8]) throws -> [UInt8] {
    let key = try P256.KeyAgreement.PublicKey(x963Representation: recipientX963)
    return try HPKESeal.sealP256(plaintext, for: key, recipientX963: recipientX963, info: info, aad: aad,
                                 ephemeralScalar: ephemeralScalar)
}

/// An unlocked EC key from its raw scalar (32 bytes: P-256, 48: P-384), for known-answer tests.
func _ecUserKey(rawScalar: [UInt8]) throws -> UserPrivateKey {
    rawScalar.count == 32
        ? UserPrivateKey(.p256(try P256.KeyAgreement.PrivateKey(rawRepresentation: rawScalar)))
        : UserPrivateKey(.p384(try P384.KeyAgreement.PrivateKey(rawRepresentation: rawScalar)))
}
