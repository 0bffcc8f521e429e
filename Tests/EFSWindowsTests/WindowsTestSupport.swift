// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSRawStream
import Foundation
import Testing

@testable import EFSWindows

func hex(_ s: String) -> [UInt8] { Hex.decode(s)! }

/// Deterministic test bytes.
func pattern(_ n: Int, seed: UInt8 = 0) -> [UInt8] {
    var state = UInt32(seed) &* 2_654_435_761 &+ 12345
    return (0..<n).map { _ in
        state = state &* 1_103_515_245 &+ 12345
        return UInt8(truncatingIfNeeded: state >> 16)
    }
}

/// Test identities: an RSA key and a self-signed certificate. RSA generation is slow, so they are made once.
final class TestIdentity: Sendable {
    let key: UserPrivateKeyBox
    let certificate: EFSCertificate

    init(name: String, recovery: Bool = false) {
        let k = try! UserPrivateKey.generate(.rsa(bits: 2048))
        certificate = try! k.makeSelfSignedCertificate(name: name, recoveryAgent: recovery)
        key = UserPrivateKeyBox(k)
    }

    static let alice = TestIdentity(name: "alice")
    static let bob = TestIdentity(name: "bob")
    static let agent = TestIdentity(name: "recovery", recovery: true)
}

/// Holds a ~Copyable key for sharing between tests.
final class UserPrivateKeyBox: Sendable {
    let key: UserPrivateKey
    init(_ key: consuming UserPrivateKey) { self.key = key }
}

/// A certificate-hash entry for `id` wrapping `fek`.
func entry(
    _ id: TestIdentity, _ fek: WindowsFEK, sid: String? = "S-1-5-21-1-2-3-1001", names: Bool = true
) throws -> WindowsKeyEntry {
    try WindowsKeyEntry.wrapping(
        fek, for: id.certificate, sid: sid.flatMap { WindowsSID($0) },
        containerName: names ? "ed4ad714-0000-4000-8000-000000000000" : nil,
        providerName: names ? "Microsoft Enhanced Cryptographic Provider v1.0" : nil,
        displayName: "\(id.certificate.displayName)(x@HOST)")
}

/// A metadata value with alice and bob in the DDF and the agent in the DRF.
func sampleMetadata(_ fek: WindowsFEK, drf: Bool = true) throws -> WindowsEFSMetadata {
    WindowsEFSMetadata(
        efsVersion: 2, efsID: Array(0..<16),
        ddf: [try entry(.alice, fek), try entry(.bob, fek, sid: nil, names: false)],
        drf: drf ? [try entry(.agent, fek, sid: nil, names: false)] : nil)
}

func le32(_ b: [UInt8], _ at: Int) -> UInt32 {
    UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
}

func put32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) {
    for i in 0..<4 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
}

/// Plaintext encrypted with the streaming encryptor (the reference for round trips).
func encryptAll(_ cipher: WindowsDataCipher, _ plain: [UInt8]) throws -> [UInt8] {
    var e = WindowsDataEncryptor(cipher: cipher)
    var out = try e.encrypt(plain)
    out += try e.finish()
    return out
}
