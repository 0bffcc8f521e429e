// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFS
@testable import EFSCore
import EFSTestSupport
import Foundation
import SystemPackage
import Testing

@Suite("Tamper detection")
struct TamperTests {
    /// Encrypts 5 blocks + 100 bytes and returns the path and the plaintext.
    func encrypted(_ f: Fixture, _ name: String = "t.bin") throws -> (FilePath, [UInt8]) {
        let plain = TestFiles.bytes(5 * 4096 + 100, seed: 99)
        let p = f.file(name, plain)
        try f.alice.session.encryptFile(at: p)
        return (p, plain)
    }

    func dataOffset(_ p: FilePath) -> Int {
        let b = TestFiles.read(p)
        let cap = Int(b[32]) | Int(b[33]) << 8 | Int(b[34]) << 16 | Int(b[35]) << 24
        return 4096 + 2 * cap
    }

    /// Opening and reading the whole file must fail; never return wrong bytes.
    func expectRejected(_ f: Fixture, _ p: FilePath, _ plain: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            let file = try f.alice.session.open(at: p)
            let got = try file.read(at: 0, count: plain.count + 10)
            Issue.record("tampered file read back \(got == plain ? "the original" : "WRONG") bytes", sourceLocation: sourceLocation)
        } catch let e as EFSError {
            #expect([.authenticationFailed, .corrupt, .unsupportedVersion].contains(e.code), "\(e)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("a bit flip in every region is detected", arguments: ["header", "sizeRecord", "slot", "first", "middle", "last", "nonce", "tag"])
    func bitFlip(region: String) throws {
        let f = try Fixture()
        let (p, plain) = try encrypted(f)
        let d = dataOffset(p)
        let offset: Int
        switch region {
        case "header": offset = 20
        case "sizeRecord": offset = 64 + 8  // generation 2 lives in copy 0
        case "slot": offset = 4096 + 200
        case "first": offset = d + 12 + 50
        case "middle": offset = d + 2 * 4124 + 12 + 1000
        case "last": offset = d + 5 * 4124 + 12 + 50
        case "nonce": offset = d + 3 * 4124 + 3
        default: offset = d + 4124 - 5
        }
        TestFiles.flipBit(p, at: offset, bit: 3)
        expectRejected(f, p, plain)
    }

    @Test("truncation inside a block and at a block boundary is detected")
    func truncation() throws {
        let f = try Fixture()
        let (p, plain) = try encrypted(f)
        let d = dataOffset(p)
        let full = TestFiles.read(p)
        for cut in [d + 4124 * 5, d + 4124 * 5 + 50, d + 4124 * 3, d + 10, d, 4096 + 100, 100] {
            TestFiles.write(p, Array(full[0..<cut]))
            expectRejected(f, p, plain)
        }
    }

    @Test("a block swapped within the file, or spliced from another file, is detected")
    func swapAndSplice() throws {
        let f = try Fixture()
        let (p, plain) = try encrypted(f)
        let d = dataOffset(p)
        var b = TestFiles.read(p)
        let orig = b
        let blk1 = Array(b[(d + 4124)..<(d + 2 * 4124)])
        b.replaceSubrange((d + 4124)..<(d + 2 * 4124), with: b[(d + 2 * 4124)..<(d + 3 * 4124)])
        b.replaceSubrange((d + 2 * 4124)..<(d + 3 * 4124), with: blk1)
        TestFiles.write(p, b)
        expectRejected(f, p, plain)
        let (q, _) = try encrypted(f, "other.bin")
        var spliced = orig
        let other = TestFiles.read(q)
        let od = dataOffset(q)
        spliced.replaceSubrange((d + 4124)..<(d + 2 * 4124), with: other[(od + 4124)..<(od + 2 * 4124)])
        TestFiles.write(p, spliced)
        expectRejected(f, p, plain)
    }

    @Test("swapped or duplicated DDF entries, a changed thumbprint or certificate are detected")
    func metadataEdits() throws {
        let f = try Fixture()
        let bob = try TestUser("bob", in: f.dir)
        let (p, plain) = try encrypted(f)
        try f.alice.session.addUsers(at: p, certificates: [bob.certificate])
        let before = TestFiles.read(p)
        // Re-encode the active slot with alice and bob swapped, fixing the unkeyed checksum: only the MAC catches it.
        let info = try readMetadata(p)
        var meta = info.metadata
        meta.users.swapAt(0, 1)
        try rewriteSlot(p, info: info, meta: meta)
        expectRejected(f, p, plain)
        TestFiles.write(p, before)
        var dup = info.metadata
        dup.recoveryAgents.append(dup.users[0])
        try rewriteSlot(p, info: info, meta: dup)
        expectRejected(f, p, plain)
        TestFiles.write(p, before)
        // A changed certificate (or thumbprint) is caught without any key: the thumbprint is its SHA-1.
        var edited = info.metadata
        var der = edited.users[0].certificateDER
        der[100] ^= 0x01
        edited.users[0] = KeyEntry(algorithm: edited.users[0].algorithm, thumbprint: edited.users[0].thumbprint, certificateDER: der, wrappedKey: edited.users[0].wrappedKey)
        try rewriteSlot(p, info: info, meta: edited)
        #expect(throws: EFSError(.corrupt, "")) { try f.alice.session.queryUsers(at: p) }
        expectRejected(f, p, plain)
    }

    func readMetadata(_ p: FilePath) throws -> EncryptedFileInfo {
        let fd = try FileDescriptor.open(p, .readOnly)
        defer { try? fd.close() }
        return try EncryptedFileInfo.read(fd, path: p)
    }

    /// Writes `meta` (with the old MAC) into the active slot with a correct checksum.
    func rewriteSlot(_ p: FilePath, info: EncryptedFileInfo, meta: FileMetadata) throws {
        var body = meta.unauthenticatedBody()
        body += info.metadataBody.suffix(32)
        let slot = MetadataSlot.encode(body: body, generation: info.metadataGeneration)
        var b = TestFiles.read(p)
        let off = 4096 + info.activeSlot * info.header.slotCapacity
        b.replaceSubrange(off..<(off + slot.count), with: slot)
        TestFiles.write(p, b)
    }

    @Test("a whole file replaced by another's complete ciphertext opens as that other file, never as a mix")
    func wholeFileReplacement() throws {
        let f = try Fixture()
        let (p, _) = try encrypted(f)
        let q = f.file("q.bin", Array("the other file".utf8))
        try f.alice.session.encryptFile(at: q)
        TestFiles.write(p, TestFiles.read(q))
        #expect(try f.alice.session.open(at: p).read(at: 0, count: 100) == Array("the other file".utf8))
    }
}
