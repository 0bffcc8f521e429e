// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Crypto
import Foundation

/// The sender side of HPKE (RFC 9180) as swift-efs wraps a FEK: base mode, one `seal` with sequence number 0
/// (algorithms 2 and 3), or a context set up once whose exporter derives each file's wrapping key (`setUpP256`,
/// `setUpP384`, `export`: algorithms 4 and 5, ``SharedEncapsulation``), for
/// DHKEM(P-256, HKDF-SHA256) with HKDF-SHA256 and for DHKEM(P-384, HKDF-SHA384) with HKDF-SHA384, both with
/// AES-256-GCM (file-format.md §4.3). The output is `enc ‖ ciphertext ‖ tag`, as swift-crypto's
/// `HPKE.Sender(recipientKey:ciphersuite:info:)` followed by `seal(_:authenticating:)` gives it.
///
/// Why not `HPKE.Sender`: swift-crypto makes each ephemeral key with `P256.KeyAgreement.PrivateKey()`, which runs
/// BoringSSL's FIPS pairwise test (an ECDSA signature and its verification) on every key it generates and retries
/// until the public key is "compact representable", which about half of all keys are not. One wrap then costs
/// about eight scalar multiplications instead of two. In the mount's untar benchmark (`bench/mount`, row 4) that
/// was the largest single cost of creating a file. An ephemeral key is used for one Diffie-Hellman and dropped, so
/// it needs neither property: RFC 9180 §4.1 asks GenerateKeyPair for a random key pair, and this takes a uniformly
/// random scalar by rejection sampling.
///
/// The receiving side stays swift-crypto's `HPKE.Recipient` (``EFSCertificate/unwrap(_:fileID:)``), so every test
/// that opens a file checks this code against an independent implementation. `HPKESealTests` also pins it to the
/// CFRG test vector for this ciphersuite (the published `test-vectors.json` of RFC 9180, kem 0x0010, kdf 0x0001,
/// aead 0x0002, mode 0).
enum HPKESeal {
    static let aes256GCM: UInt16 = 0x0002

    /// Seals `plaintext` for a P-256 recipient whose uncompressed point (65 bytes) is `recipientX963`.
    static func sealP256(
        _ plaintext: some ContiguousBytes, for recipient: P256.KeyAgreement.PublicKey, recipientX963: [UInt8],
        info: [UInt8], aad: [UInt8], ephemeralScalar: [UInt8]? = nil
    ) throws -> [UInt8] {
        let (enc, dh) = try ephemeral(scalarSize: 32, fixed: ephemeralScalar) { raw in
            let sk = try P256.KeyAgreement.PrivateKey(rawRepresentation: raw)
            return (Array(sk.publicKey.x963Representation), try sk.sharedSecretFromKeyAgreement(with: recipient))
        }
        return try seal(SHA256.self, kemID: 0x0010, kdfID: 0x0001, secretSize: 32, dh: dh, enc: enc,
                        recipientX963: recipientX963, info: info, aad: aad, plaintext: plaintext)
    }

    /// Seals `plaintext` for a P-384 recipient whose uncompressed point (97 bytes) is `recipientX963`.
    static func sealP384(
        _ plaintext: some ContiguousBytes, for recipient: P384.KeyAgreement.PublicKey, recipientX963: [UInt8],
        info: [UInt8], aad: [UInt8], ephemeralScalar: [UInt8]? = nil
    ) throws -> [UInt8] {
        let (enc, dh) = try ephemeral(scalarSize: 48, fixed: ephemeralScalar) { raw in
            let sk = try P384.KeyAgreement.PrivateKey(rawRepresentation: raw)
            return (Array(sk.publicKey.x963Representation), try sk.sharedSecretFromKeyAgreement(with: recipient))
        }
        return try seal(SHA384.self, kemID: 0x0011, kdfID: 0x0002, secretSize: 48, dh: dh, enc: enc,
                        recipientX963: recipientX963, info: info, aad: aad, plaintext: plaintext)
    }

    /// A fresh ephemeral key pair's public point and its shared secret with the recipient. The scalar is drawn
    /// from BoringSSL's generator and refused by BoringSSL when it is 0 or not below the group order, then drawn
    /// again (a chance of about 2^-32 for P-256). `fixed` (tests only) uses the given scalar.
    private static func ephemeral(
        scalarSize: Int, fixed: [UInt8]?, _ agree: (UnsafeRawBufferPointer) throws -> ([UInt8], SharedSecret)
    ) throws -> ([UInt8], SharedSecret) {
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: scalarSize, alignment: 8)
        defer {
            raw.initializeMemory(as: UInt8.self, repeating: 0)
            raw.deallocate()
        }
        if let fixed {
            precondition(fixed.count == scalarSize)
            raw.copyBytes(from: fixed)
            return try agree(UnsafeRawBufferPointer(raw))
        }
        for _ in 0..<64 {
            AESGCMContext.randomBytes(raw)
            if let made = try? agree(UnsafeRawBufferPointer(raw)) { return made }
        }
        // 64 refusals in a row cannot happen with a working generator or a valid recipient key.
        return try agree(UnsafeRawBufferPointer(raw))
    }

    /// RFC 9180 §4.1 ExtractAndExpand, §5.1 KeySchedule (mode_base, empty psk and psk_id) and §5.2 Seal with
    /// sequence number 0 (the nonce is `base_nonce`).
    private static func seal<H: HashFunction>(
        _: H.Type, kemID: UInt16, kdfID: UInt16, secretSize: Int, dh: SharedSecret, enc: [UInt8],
        recipientX963: [UInt8], info: [UInt8], aad: [UInt8], plaintext: some ContiguousBytes
    ) throws -> [UInt8] {
        let schedule = keySchedule(H.self, kemID: kemID, kdfID: kdfID, secretSize: secretSize, dh: dh, enc: enc,
                                   recipientX963: recipientX963, info: info)
        let nonce = try schedule.baseNonce.withUnsafeBytes { try AES.GCM.Nonce(data: $0) }
        let box = try plaintext.withUnsafeBytes { try AES.GCM.seal($0, using: schedule.key, nonce: nonce, authenticating: aad) }
        return enc + Array(box.ciphertext) + Array(box.tag)
    }

    /// The secrets of an HPKE sender context (RFC 9180 §5.1): the AEAD key and base nonce, and the exporter secret.
    struct Schedule {
        let key: SymmetricKey
        let baseNonce: SymmetricKey
        let exporterSecret: SymmetricKey
    }

    /// RFC 9180 §4.1 ExtractAndExpand and §5.1 KeySchedule, mode_base with empty psk and psk_id.
    private static func keySchedule<H: HashFunction>(
        _: H.Type, kemID: UInt16, kdfID: UInt16, secretSize: Int, dh: SharedSecret, enc: [UInt8],
        recipientX963: [UInt8], info: [UInt8]
    ) -> Schedule {
        let kemSuite = Array("KEM".utf8) + be16(kemID)
        let hpkeSuite = Array("HPKE".utf8) + be16(kemID) + be16(kdfID) + be16(aes256GCM)
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        let noSalt = SymmetricKey(data: [UInt8]())
        // shared_secret = LabeledExpand(LabeledExtract("", "eae_prk", dh), "shared_secret", enc ‖ pkRm, Nsecret)
        let eaePRK = dh.withUnsafeBytes { labeledExtract(H.self, suite: kemSuite, salt: noSalt, label: "eae_prk", ikm: $0) }
        let sharedSecret = labeledExpand(H.self, suite: kemSuite, prk: eaePRK, label: "shared_secret",
                                         info: enc + recipientX963, count: secretSize)
        let pskIDHash = labeledExtract(H.self, suite: hpkeSuite, salt: noSalt, label: "psk_id_hash", ikm: empty)
        let infoHash = info.withUnsafeBytes { labeledExtract(H.self, suite: hpkeSuite, salt: noSalt, label: "info_hash", ikm: $0) }
        let context = [0] + pskIDHash.withUnsafeBytes { Array($0) } + infoHash.withUnsafeBytes { Array($0) }
        let secret = labeledExtract(H.self, suite: hpkeSuite, salt: sharedSecret, label: "secret", ikm: empty)
        return Schedule(
            key: labeledExpand(H.self, suite: hpkeSuite, prk: secret, label: "key", info: context, count: 32),
            baseNonce: labeledExpand(H.self, suite: hpkeSuite, prk: secret, label: "base_nonce", info: context, count: 12),
            exporterSecret: labeledExpand(H.self, suite: hpkeSuite, prk: secret, label: "exp", info: context, count: H.Digest.byteCount))
    }

    // MARK: - One encapsulation, many keys (wrap algorithms 4 and 5)

    /// A sender context set up once for a P-256 recipient: its `enc` and exporter secret (RFC 9180 §5.1, §5.3).
    static func setUpP256(
        for recipient: P256.KeyAgreement.PublicKey, recipientX963: [UInt8], info: [UInt8], ephemeralScalar: [UInt8]? = nil
    ) throws -> (enc: [UInt8], exporterSecret: SymmetricKey) {
        let (enc, dh) = try ephemeral(scalarSize: 32, fixed: ephemeralScalar) { raw in
            let sk = try P256.KeyAgreement.PrivateKey(rawRepresentation: raw)
            return (Array(sk.publicKey.x963Representation), try sk.sharedSecretFromKeyAgreement(with: recipient))
        }
        let schedule = keySchedule(SHA256.self, kemID: 0x0010, kdfID: 0x0001, secretSize: 32, dh: dh, enc: enc,
                                   recipientX963: recipientX963, info: info)
        return (enc, schedule.exporterSecret)
    }

    /// The same for a P-384 recipient.
    static func setUpP384(
        for recipient: P384.KeyAgreement.PublicKey, recipientX963: [UInt8], info: [UInt8], ephemeralScalar: [UInt8]? = nil
    ) throws -> (enc: [UInt8], exporterSecret: SymmetricKey) {
        let (enc, dh) = try ephemeral(scalarSize: 48, fixed: ephemeralScalar) { raw in
            let sk = try P384.KeyAgreement.PrivateKey(rawRepresentation: raw)
            return (Array(sk.publicKey.x963Representation), try sk.sharedSecretFromKeyAgreement(with: recipient))
        }
        let schedule = keySchedule(SHA384.self, kemID: 0x0011, kdfID: 0x0002, secretSize: 48, dh: dh, enc: enc,
                                   recipientX963: recipientX963, info: info)
        return (enc, schedule.exporterSecret)
    }

    /// RFC 9180 §5.3 Export: `LabeledExpand(exporter_secret, "sec", exporter_context, L)`, for the ciphersuite of
    /// `kemID`/`kdfID` (AEAD AES-256-GCM). What swift-crypto's `HPKE.Recipient.exportSecret` gives the receiver.
    static func export<H: HashFunction>(
        _: H.Type, kemID: UInt16, kdfID: UInt16, exporterSecret: SymmetricKey, context: [UInt8], count: Int
    ) -> SymmetricKey {
        let hpkeSuite = Array("HPKE".utf8) + be16(kemID) + be16(kdfID) + be16(aes256GCM)
        return labeledExpand(H.self, suite: hpkeSuite, prk: exporterSecret, label: "sec", info: context, count: count)
    }

    /// LabeledExtract(salt, label, ikm) = HKDF-Extract(salt, "HPKE-v1" ‖ suite_id ‖ label ‖ ikm) (RFC 9180 §4), where
    /// HKDF-Extract(salt, x) = HMAC(salt, x) (RFC 5869 §2.2; an empty salt is HMAC's zero-padded key, the same as
    /// the HashLen zero bytes RFC 5869 substitutes). The secret `ikm` goes into the HMAC without a copy.
    private static func labeledExtract<H: HashFunction>(
        _: H.Type, suite: [UInt8], salt: SymmetricKey, label: String, ikm: UnsafeRawBufferPointer
    ) -> SymmetricKey {
        let mac = HMACState(hash(H.self), key: salt)
        mac.update(Array("HPKE-v1".utf8) + suite + Array(label.utf8))
        mac.update(ikm)
        return mac.finalizeKey()
    }

    /// LabeledExpand(prk, label, info, L) = HKDF-Expand(prk, I2OSP(L, 2) ‖ "HPKE-v1" ‖ suite_id ‖ label ‖ info, L).
    private static func labeledExpand<H: HashFunction>(
        _: H.Type, suite: [UInt8], prk: SymmetricKey, label: String, info: [UInt8], count: Int
    ) -> SymmetricKey {
        let labeled = be16(UInt16(count)) + Array("HPKE-v1".utf8) + suite + Array(label.utf8) + info
        return HMACState.expand(hash(H.self), prk: prk, info: labeled, count: count)
    }

    private static func hash<H: HashFunction>(_: H.Type) -> HMACState.Hash { H.Digest.byteCount == 48 ? .sha384 : .sha256 }

    private static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
}
