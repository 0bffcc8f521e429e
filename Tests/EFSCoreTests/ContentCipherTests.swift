// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Foundation
import Synchronization
import Testing

@testable import EFSCore

private func hex(_ s: String) -> [UInt8] { Hex.decode(s)! }

private func loadJSON(_ name: String) throws -> [String: Any] {
    let url = try #require(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Vectors"))
    return try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
}

@Suite("ContentCipher")
struct ContentCipherTests {
    @Test("Wycheproof AES-256-GCM vectors through the primitive we use")
    func wycheproof() throws {
        let doc = try loadJSON("wycheproof-aes-gcm-256")
        let tests = try #require(doc["tests"] as? [[String: Any]])
        #expect(tests.count > 50)
        for t in tests {
            let key = hex(t["key"] as! String), iv = hex(t["iv"] as! String), aad = hex(t["aad"] as! String)
            let msg = hex(t["msg"] as! String), ct = hex(t["ct"] as! String), tag = hex(t["tag"] as! String)
            let opened = ContentCipher._openPrimitive(key: key, nonce: iv, aad: aad, ciphertext: ct, tag: tag)
            if (t["result"] as! String) == "valid" {
                #expect(opened == msg, "tcId \(t["tcId"]!)")
                #expect(ContentCipher._sealPrimitive(key: key, nonce: iv, aad: aad, plaintext: msg) == ct + tag, "tcId \(t["tcId"]!)")
            } else {
                #expect(opened == nil, "tcId \(t["tcId"]!) must be rejected")
            }
        }
    }

    @Test("known-answer blocks from the independent Python generator")
    func knownAnswerBlocks() throws {
        let doc = try loadJSON("efs-v1-blocks")
        let blocks = try #require(doc["blocks"] as? [[String: Any]])
        for v in blocks {
            let fek = try FileEncryptionKey(unwrapped: hex(v["fek"] as! String), fileID: FileID(bytes: hex(v["fileID"] as! String)))
            let cipher = ContentCipher(fek)
            let index = (v["block"] as! NSNumber).uint64Value
            let stored = hex(v["stored"] as! String)
            let plain = hex(v["plaintext"] as! String)
            #expect(cipher.unsafeUncheckedSeal(block: index, plain, nonce: hex(v["nonce"] as! String)) == stored)
            #expect(try cipher.open(block: index, stored, allowHole: false) == plain)
        }
    }

    @Test("known-answer size records from the independent Python generator")
    func knownAnswerSizeRecords() throws {
        let doc = try loadJSON("efs-v1-blocks")
        for v in try #require(doc["sizeRecords"] as? [[String: Any]]) {
            let fek = try FileEncryptionKey(unwrapped: hex(v["fek"] as! String), fileID: FileID(bytes: hex(v["fileID"] as! String)))
            let rec = SizeRecord(
                generation: (v["generation"] as! NSNumber).uint64Value, plaintextSize: (v["size"] as! NSNumber).uint64Value,
                isSparse: (v["flags"] as! NSNumber).intValue & 1 == 1)
            let bytes = hex(v["record"] as! String)
            #expect(rec.encoded(fek) == bytes)
            #expect(try SizeRecord.decode(bytes, fek) == rec)
        }
    }

    @Test("known-answer header from the independent Python generator")
    func knownAnswerHeader() throws {
        let doc = try loadJSON("efs-v1-blocks")
        let h = try #require(doc["header"] as? [String: Any])
        let header = FileHeader(fileID: try FileID(bytes: hex(h["fileID"] as! String)), slotCapacity: 8192)
        #expect(header.encoded() == hex(h["encoded"] as! String))
        #expect(try FileHeader(decoding: hex(h["encoded"] as! String)) == header)
    }

    @Test("round trip over block sizes", arguments: [0, 1, 15, 16, 17, 4095, 4096])
    func roundTrip(size: Int) throws {
        let fek = FileEncryptionKey.generate(fileID: .random())
        let c = ContentCipher(fek)
        let plain = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let stored = c.seal(block: 3, plain)
        #expect(stored.count == size + ContentCipher.overhead)
        #expect(try c.open(block: 3, stored, allowHole: false) == plain)
        // Two seals of the same block differ (fresh nonce).
        #expect(c.seal(block: 3, plain) != stored)
    }

    @Test("every single bit flip of a stored block is detected")
    func everyBitFlip() throws {
        let fek = FileEncryptionKey.generate(fileID: .random())
        let c = ContentCipher(fek)
        let stored = c.seal(block: 0, Array(repeating: 0x41, count: 64))
        for i in 0..<stored.count {
            for bit in [0, 3, 7] {
                var t = stored
                t[i] ^= UInt8(1 << bit)
                #expect(throws: FormatError.authenticationFailed) { try c.open(block: 0, t, allowHole: false) }
            }
        }
    }

    @Test("a block at the wrong index or from another file is rejected")
    func wrongPlace() throws {
        let a = ContentCipher(FileEncryptionKey.generate(fileID: .random()))
        let fek = FileEncryptionKey.generate(fileID: .random())
        let b = ContentCipher(fek)
        let sameKeyOtherFile = ContentCipher(fek.rebinding(to: .random()))
        let stored = b.seal(block: 5, Array("data".utf8))
        #expect(throws: FormatError.authenticationFailed) { try b.open(block: 4, stored, allowHole: false) }
        #expect(throws: FormatError.authenticationFailed) { try a.open(block: 5, stored, allowHole: false) }
        #expect(throws: FormatError.authenticationFailed) { try sameKeyOtherFile.open(block: 5, stored, allowHole: false) }
    }

    @Test("an all-zero block is a hole only in a sparse file")
    func holes() throws {
        let c = ContentCipher(FileEncryptionKey.generate(fileID: .random()))
        let zeros = [UInt8](repeating: 0, count: ContentCipher.storedBlockSize)
        #expect(try c.open(block: 1, zeros, allowHole: true) == [UInt8](repeating: 0, count: 4096))
        #expect(throws: FormatError.authenticationFailed) { try c.open(block: 1, zeros, allowHole: false) }
        #expect(throws: FormatError.authenticationFailed) { try c.open(block: 1, [UInt8](repeating: 0, count: 27), allowHole: true) }
    }

    @Test("stored-length arithmetic is a bijection on valid lengths")
    func layoutArithmetic() {
        for size: UInt64 in [0, 1, 4095, 4096, 4097, 65535, 65536, 65537, 3 << 20, 1 << 40] {
            let len = ContentCipher.storedLength(forPlaintextSize: size)
            #expect(ContentCipher.plaintextSize(forStoredLength: len) == size)
        }
        for bad: UInt64 in [1, 27, 28, 4124 + 5, 4124 + 28] {
            #expect(ContentCipher.plaintextSize(forStoredLength: bad) == nil)
        }
    }
}

@Suite("ContentCipher bulk paths")
struct ContentCipherBulkTests {
    @Test("sealBlocks and openBlocks agree with the one-block path for every length 0…9000 (step 7)")
    func differential() throws {
        let fek = FileEncryptionKey.generate(fileID: .random())
        let c = ContentCipher(fek)
        for len in stride(from: 0, through: 9_000, by: 7) {
            let plain = (0..<len).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ len) }
            let blocks = (len + 4095) / 4096
            var stored = [UInt8](repeating: 0, count: len + blocks * ContentCipher.overhead)
            plain.withUnsafeBytes { p in stored.withUnsafeMutableBytes { c.sealBlocks(first: 5, plaintext: p, into: $0) } }
            // Each stored block opens with the one-block path at its index.
            var off = 0
            for i in 0..<blocks {
                let n = min(ContentCipher.storedBlockSize, stored.count - off)
                let got = try c.open(block: 5 + UInt64(i), stored[off..<(off + n)], allowHole: false)
                #expect(got == Array(plain[(i * 4096)..<min(len, (i + 1) * 4096)]), "len \(len) block \(i)")
                off += n
            }
            // And the bulk open returns the plaintext.
            var back = [UInt8](repeating: 0, count: blocks * 4096)
            let bad = stored.withUnsafeBytes { s in back.withUnsafeMutableBytes { c.openBlocks(first: 5, stored: s, into: $0, allowHole: false) } }
            #expect(bad == nil)
            #expect(Array(back[0..<len]) == plain)
        }
    }

    @Test("openBlocks reports the first bad block, and nonces differ between blocks")
    func badBlock() {
        let c = ContentCipher(FileEncryptionKey.generate(fileID: .random()))
        let plain = [UInt8](repeating: 7, count: 3 * 4096)
        var stored = [UInt8](repeating: 0, count: 3 * ContentCipher.storedBlockSize)
        plain.withUnsafeBytes { p in stored.withUnsafeMutableBytes { c.sealBlocks(first: 0, plaintext: p, into: $0) } }
        #expect(Array(stored[0..<12]) != Array(stored[4124..<4136]))
        stored[4124 + 500] ^= 1
        var back = [UInt8](repeating: 0, count: 3 * 4096)
        let bad = stored.withUnsafeBytes { s in back.withUnsafeMutableBytes { c.openBlocks(first: 0, stored: s, into: $0, allowHole: false) } }
        #expect(bad == 1)
    }
}

@Suite("AES-GCM context")
struct AESGCMContextTests {
    @Test("the reused context seals exactly what swift-crypto's AES.GCM.seal does, and opens it", arguments: [0, 1, 15, 16, 17, 4095, 4096])
    func matchesSwiftCrypto(length: Int) throws {
        var g = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            let key = (0..<32).map { _ in UInt8.random(in: 0...255, using: &g) }
            let nonce = (0..<12).map { _ in UInt8.random(in: 0...255, using: &g) }
            let aad = (0..<Int.random(in: 0...40, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) }
            let plain = (0..<length).map { _ in UInt8.random(in: 0...255, using: &g) }
            let ours = try #require(ContentCipher._sealPrimitive(key: key, nonce: nonce, aad: aad, plaintext: plain))
            #expect(ours == ContentCipher._sealSwiftCrypto(key: key, nonce: nonce, aad: aad, plaintext: plain))
            let opened = ContentCipher._openPrimitive(
                key: key, nonce: nonce, aad: aad, ciphertext: Array(ours.dropLast(16)), tag: Array(ours.suffix(16)))
            #expect(opened == plain)
            // Wrong AAD, nonce or key: rejected.
            #expect(ContentCipher._openPrimitive(key: key, nonce: nonce, aad: aad + [0], ciphertext: Array(ours.dropLast(16)), tag: Array(ours.suffix(16))) == nil)
            var n2 = nonce
            n2[0] ^= 1
            #expect(ContentCipher._openPrimitive(key: key, nonce: n2, aad: aad, ciphertext: Array(ours.dropLast(16)), tag: Array(ours.suffix(16))) == nil)
            var k2 = key
            k2[31] ^= 0x80
            #expect(ContentCipher._openPrimitive(key: k2, nonce: nonce, aad: aad, ciphertext: Array(ours.dropLast(16)), tag: Array(ours.suffix(16))) == nil)
        }
    }

    @Test("nonces of another length are refused, not truncated")
    func nonceLength() {
        let key = [UInt8](repeating: 1, count: 32)
        #expect(ContentCipher._sealPrimitive(key: key, nonce: [UInt8](repeating: 0, count: 16), aad: [], plaintext: [1]) == nil)
        #expect(ContentCipher._openPrimitive(key: key, nonce: [UInt8](repeating: 0, count: 8), aad: [], ciphertext: [1], tag: [UInt8](repeating: 0, count: 16)) == nil)
    }

    @Test("one cipher used from several threads at once seals and opens correctly")
    func concurrentUse() {
        let c = ContentCipher(FileEncryptionKey.generate(fileID: .random()))
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            let plain = [UInt8](repeating: UInt8(t), count: 64 * 4096)
            var stored = [UInt8](repeating: 0, count: 64 * ContentCipher.storedBlockSize)
            var back = [UInt8](repeating: 0, count: plain.count)
            for round in 0..<20 {
                let first = UInt64(t * 1000 + round * 64)
                plain.withUnsafeBytes { p in stored.withUnsafeMutableBytes { c.sealBlocks(first: first, plaintext: p, into: $0) } }
                let bad = stored.withUnsafeBytes { s in back.withUnsafeMutableBytes { c.openBlocks(first: first, stored: s, into: $0, allowHole: false) } }
                if bad != nil || back != plain { failures.add(1, ordering: .relaxed) }
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
    }
}
