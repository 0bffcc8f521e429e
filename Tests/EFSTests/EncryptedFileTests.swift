// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFS
import EFSCore
import EFSSystem
import EFSTestSupport
import Foundation
import SystemPackage
import Testing

/// A fresh volume with one user (alice) and one recovery agent.
struct Fixture {
    let dir = TemporaryDirectory()
    let alice: TestUser
    let agent: TestUser
    let volume: FilePath

    init(aliceKind: UserPrivateKey.Kind = .p256) throws {
        alice = try TestUser("alice", in: dir, kind: aliceKind)
        agent = try TestUser("agent", in: dir, recoveryAgent: true)
        volume = dir.appending("vol")
        try FileManager.default.createDirectory(atPath: volume.string, withIntermediateDirectories: true)
        _ = try Volume.initialize(at: volume, recoveryAgents: [agent.certificate])
    }

    func file(_ name: String, _ bytes: [UInt8]) -> FilePath {
        let p = volume.appending(name)
        TestFiles.write(p, bytes)
        return p
    }
}

@Suite("Encrypt and decrypt")
struct EncryptDecryptTests {
    static let sizes = [0, 1, 4095, 4096, 4097, 65535, 65536, 65537, 3 * 1_048_576 + 123]

    @Test("round trip in place over sizes", arguments: sizes)
    func roundTrip(size: Int) throws {
        let f = try Fixture()
        let plain = TestFiles.bytes(size, seed: UInt64(size))
        let p = f.file("f.bin", plain)
        try f.alice.session.encryptFile(at: p)
        let stored = TestFiles.read(p)
        #expect(stored != plain)
        #expect(try f.alice.session.fileEncryptionStatus(at: p) == .encrypted)
        if size >= 16 {
            // No 16-byte window of the plaintext appears in the backing file.
            let probe = Array(plain[(size / 2)..<(size / 2 + 16)])
            #expect(!contains(stored, probe))
        }
        let file = try f.alice.session.open(at: p)
        #expect(file.size == UInt64(size))
        #expect(try file.read(at: 0, count: size + 10) == plain)
        // While a handle is open, in-place decryption is a sharing violation.
        #expect(throws: EFSError(.sharingViolation, "")) { try f.alice.session.decryptFile(at: p) }
        try file.close()
        #expect(throws: EFSError(.invalidOperation, "")) { try file.read(at: 0, count: 1) }
        // The recovery agent can read it too; idempotent encrypt changes nothing.
        let agentFile = try f.agent.session.open(at: p)
        #expect(try agentFile.read(at: 0, count: size) == plain)
        try agentFile.close()
        try f.alice.session.encryptFile(at: p)
        #expect(TestFiles.read(p) == stored)
        try f.alice.session.decryptFile(at: p)
        #expect(TestFiles.read(p) == plain)
        try f.alice.session.decryptFile(at: p)  // not encrypted → success
        #expect(TestFiles.read(p) == plain)
    }

    @Test("mode, owner and modification time survive encrypt and decrypt")
    func attributes() throws {
        let f = try Fixture()
        let p = f.file("a.txt", Array("attrs".utf8))
        try FileManager.default.setAttributes([.posixPermissions: 0o640, .modificationDate: Date(timeIntervalSince1970: 1_000_000)], ofItemAtPath: p.string)
        try f.alice.session.encryptFile(at: p)
        var a = try FileManager.default.attributesOfItem(atPath: p.string)
        #expect((a[.posixPermissions] as? Int) == 0o640)
        #expect((a[.modificationDate] as? Date) == Date(timeIntervalSince1970: 1_000_000))
        try f.alice.session.decryptFile(at: p)
        a = try FileManager.default.attributesOfItem(atPath: p.string)
        #expect((a[.posixPermissions] as? Int) == 0o640)
    }

    @Test("a user without a key gets a message naming the file's users")
    func noKey() throws {
        let f = try Fixture()
        let mallory = try TestUser("mallory", in: f.dir)
        let p = f.file("secret.txt", Array("secret".utf8))
        try f.alice.session.encryptFile(at: p)
        let e = try #require(throws: EFSError.self) { try mallory.session.open(at: p) }
        #expect(e.code == .noKey)
        #expect(e.message.contains("alice (\(f.alice.certificate.thumbprint))"))
        #expect(e.message.contains("recovery agent agent"))
        #expect(throws: EFSError(.noKey, "")) { try mallory.session.decryptFile(at: p) }
        #expect(TestFiles.read(p).count > 0)
    }

    @Test("read-only files are refused with the read-only error")
    func readOnly() throws {
        let f = try Fixture()
        let p = f.file("ro.txt", Array("ro".utf8))
        try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: p.string)
        #expect(try f.alice.session.fileEncryptionStatus(at: p) == .readOnly)
        #expect(throws: EFSError(.readOnly, "")) { try f.alice.session.encryptFile(at: p) }
        #expect(TestFiles.read(p) == Array("ro".utf8))
    }

    @Test("files with several hard links are refused rather than split")
    func hardLinks() throws {
        let f = try Fixture()
        let p = f.file("l.txt", Array("link".utf8))
        try FileManager.default.linkItem(atPath: p.string, toPath: f.volume.appending("l2.txt").string)
        #expect(throws: EFSError(.notSupported, "")) { try f.alice.session.encryptFile(at: p) }
    }

    @Test("outside a volume, encrypting is refused but decrypting restored files works")
    func outsideVolume() throws {
        let f = try Fixture()
        let outside = f.dir.write("outside.txt", Array("x".utf8))
        #expect(try f.alice.session.fileEncryptionStatus(at: outside) == .fileSystemNotSupported)
        #expect(throws: EFSError(.notOnVolume, "")) { try f.alice.session.encryptFile(at: outside) }
        let p = f.file("inside.txt", Array("moved".utf8))
        try f.alice.session.encryptFile(at: p)
        let moved = f.dir.appending("moved.txt")
        try FileManager.default.copyItem(atPath: p.string, toPath: moved.string)
        #expect(try f.alice.session.open(at: moved).read(at: 0, count: 100) == Array("moved".utf8))
    }

    @Test("FileEncryptionStatus names roots, system files and disabled directories")
    func status() throws {
        let f = try Fixture()
        let s = f.alice.session
        #expect(try s.fileEncryptionStatus(at: f.volume) == .rootDirectory)
        #expect(try s.fileEncryptionStatus(at: f.volume.appending(".efs")) == .systemDirectory)
        #expect(try s.fileEncryptionStatus(at: f.volume.appending(".efs/volume.conf")) == .systemFile)
        let d = f.volume.appending("d")
        try FileManager.default.createDirectory(atPath: d.string, withIntermediateDirectories: false)
        #expect(try s.fileEncryptionStatus(at: d) == .encryptable)
        try s.encryptFile(at: d)
        #expect(try s.fileEncryptionStatus(at: d) == .encrypted)
        #expect(try s.fileEncryptionStatus(at: d.appending(".efs-dir")) == .systemFile)
        let pub = f.volume.appending("public")
        try FileManager.default.createDirectory(atPath: pub.string, withIntermediateDirectories: false)
        TestFiles.write(pub.appending("x"), [1])
        try s.encryptionDisable(pub, disable: true)
        try s.encryptionDisable(pub, disable: true)
        #expect(try s.fileEncryptionStatus(at: pub.appending("x")) == .directoryDisallowed)
        #expect(try s.fileEncryptionStatus(at: pub) == .directoryDisallowed)
        #expect(throws: EFSError(.encryptionDisallowed, "")) { try s.encryptFile(at: pub.appending("x")) }
        try s.encryptionDisable(pub, disable: false)
        try s.encryptFile(at: pub.appending("x"))
        #expect(throws: EFSError(.invalidArgument, "")) { try s.encryptionDisable(pub.appending("x"), disable: true) }
        #expect(throws: EFSError(.fileNotFound, "")) { try s.fileEncryptionStatus(at: f.volume.appending("missing")) }
    }

    @Test("new files in a marked directory are encrypted; elsewhere plain")
    func createFile() throws {
        let f = try Fixture()
        let s = f.alice.session
        let d = f.volume.appending("projects")
        try FileManager.default.createDirectory(atPath: d.string, withIntermediateDirectories: false)
        try s.encryptFile(at: d)
        guard case .encrypted(let file) = try s.createFile(at: d.appending("new.txt")) else {
            Issue.record("expected an encrypted file")
            return
        }
        try file.write(Array("fresh".utf8), at: 0)
        try file.close()
        #expect(try s.fileEncryptionStatus(at: d.appending("new.txt")) == .encrypted)
        #expect(try f.agent.session.open(at: d.appending("new.txt")).read(at: 0, count: 10) == Array("fresh".utf8))
        #expect(try s.queryRecoveryAgents(at: d.appending("new.txt")).map(\.thumbprint) == [f.agent.certificate.thumbprint])
        guard case .plain = try s.createFile(at: f.volume.appending("plain.txt")) else {
            Issue.record("expected a plain file")
            return
        }
        #expect(throws: EFSError(.alreadyExists, "")) { try s.createFile(at: d.appending("new.txt")) }
        try s.decryptFile(at: d)
        #expect(try s.fileEncryptionStatus(at: d) == .encryptable)
    }

    @Test("no current key gives a clear error")
    func noUserKeys() throws {
        let f = try Fixture()
        let empty = EFSSession(keyStore: KeyStore(root: f.dir.appending("nobody")), passphrase: nil)
        let p = f.file("n.txt", [1, 2, 3])
        let e = try #require(throws: EFSError.self) { try empty.encryptFile(at: p) }
        #expect(e.code == .noUserKeys)
        #expect(e.message.contains("efs key new"))
    }
}

func contains(_ hay: [UInt8], _ needle: [UInt8]) -> Bool { TestFiles.contains(hay, needle) }

@Suite("EncryptedFile random access")
struct RandomAccessTests {
    @Test("random writes, truncates and reads match a plain model", arguments: [1, 2, 3, 4])
    func model(seed: UInt64) throws {
        let f = try Fixture()
        let s = f.alice.session
        let d = f.volume.appending("d")
        try FileManager.default.createDirectory(atPath: d.string, withIntermediateDirectories: false)
        try s.encryptFile(at: d)
        guard case .encrypted(let file) = try s.createFile(at: d.appending("m.bin")) else { Issue.record("not encrypted"); return }
        var model: [UInt8] = []
        var rng = SplitMix64(seed: seed)
        let maxSize = 200_000
        for step in 0..<300 {
            switch rng.next() % 10 {
            case 0..<5:
                let off = Int(rng.next() % UInt64(maxSize))
                let len = Int(rng.next() % 9000) + 1
                let data = (0..<len).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                try file.write(data, at: UInt64(off))
                if model.count < off + len { model += [UInt8](repeating: 0, count: off + len - model.count) }
                model.replaceSubrange(off..<(off + len), with: data)
            case 5:
                let off = Int(rng.next() % UInt64(maxSize))
                let len = Int(rng.next() % 40_000) + 1
                try file.punchHole(at: UInt64(off), count: UInt64(len))
                if off < model.count {
                    let end = min(model.count, off + len)
                    model.replaceSubrange(off..<end, with: repeatElement(0, count: end - off))
                }
            case 6:
                let n = Int(rng.next() % UInt64(maxSize))
                try file.truncate(to: UInt64(n))
                if n < model.count { model.removeSubrange(n...) } else { model += [UInt8](repeating: 0, count: n - model.count) }
            default:
                let off = Int(rng.next() % UInt64(maxSize + 1000))
                let len = Int(rng.next() % 20000)
                let expect = off < model.count ? Array(model[off..<min(model.count, off + len)]) : []
                #expect(try file.read(at: UInt64(off), count: len) == expect, "step \(step)")
            }
            #expect(file.size == UInt64(model.count))
        }
        try file.close()
        // A fresh handle sees the same bytes.
        let again = try s.open(at: d.appending("m.bin"))
        #expect(try again.read(at: 0, count: maxSize * 2) == model)
    }

    @Test("a sparse extension reads zeros and keeps the file authenticated")
    func sparse() throws {
        let f = try Fixture()
        let p = f.file("s.bin", Array("head".utf8))
        try f.alice.session.encryptFile(at: p)
        let file = try f.alice.session.open(at: p, writable: true)
        try file.truncate(to: 10 << 20)
        #expect(file.isSparse)
        try file.write(Array("tail".utf8), at: (10 << 20) - 4)
        #expect(try file.read(at: 0, count: 8) == Array("head".utf8) + [0, 0, 0, 0])
        #expect(try file.read(at: 5 << 20, count: 4) == [0, 0, 0, 0])
        #expect(try file.read(at: (10 << 20) - 4, count: 10) == Array("tail".utf8))
        try file.close()
    }

    @Test("punching a hole zeroes the range, frees whole blocks on disk, and keeps the size", arguments: [
        (0, 100_000), (1, 4095), (4095, 2), (4096, 4096), (5000, 20_000), (8192, 300_000), (99_999, 50), (200_000, 10),
    ])
    func punch(offset: Int, count: Int) throws {
        let f = try Fixture()
        var model = TestFiles.bytes(100_000, seed: UInt64(offset))
        let p = f.file("p.bin", model)
        try f.alice.session.encryptFile(at: p)
        let file = try f.alice.session.open(at: p, writable: true)
        let before = try Sys.stat(p)
        try file.punchHole(at: UInt64(offset), count: UInt64(count))
        if offset < model.count {
            let end = min(model.count, offset + count)
            model.replaceSubrange(offset..<end, with: repeatElement(0, count: end - offset))
        }
        #expect(file.size == 100_000)
        #expect(try file.read(at: 0, count: 200_000) == model)
        try file.close()
        let again = try f.alice.session.open(at: p)
        #expect(try again.read(at: 0, count: 200_000) == model, "a fresh handle reads the same bytes")
        try again.close()
        if count >= 3 * ContentCipher.blockSize, offset < 100_000 {
            #expect(try Sys.stat(p).blocks < before.blocks, "whole blocks became holes in the backing file")
        }
    }

    @Test("an overwrite torn by a crash is redone from its record, by a writer or a reader", arguments: [false, true])
    func redo(readerCompletes: Bool) throws {
        let f = try Fixture()
        let old = TestFiles.bytes(50_000, seed: 31)
        let new = TestFiles.bytes(20_000, seed: 32)
        let p = f.file("j.bin", old)
        try f.alice.session.encryptFile(at: p)
        // What the writer would put in place for new bytes at 8192: re-sealed blocks 2…6 (the last one partial).
        let writer = try f.alice.session.open(at: p, writable: true)
        try writer.write(new, at: 8192)
        try writer.close()
        let after = TestFiles.read(p)
        let fd = try Sys.open(p, .readWrite)
        let info = try EncryptedFileInfo.read(fd, path: p)
        let dataOffset = UInt64(info.header.dataOffset)
        let sbs = UInt64(ContentCipher.storedBlockSize)
        let target = 2 * sbs
        let payload = Array(after[Int(dataOffset + target)..<Int(dataOffset + 7 * sbs)])
        let end = info.physicalDataLength
        let record = WriteJournal(target: target, dataEnd: end, payload: payload)
        try Sys.pwriteAll(fd, record.footer(fileID: info.header.fileID), at: Int64(dataOffset + record.footerOffset(dataOffset: dataOffset)))
        try Sys.pwriteAll(fd, payload, at: Int64(dataOffset + end))
        // The in-place write torn at a page boundary: new bytes up to it, garbage (old file's bytes) after.
        let tearAt = ((dataOffset + target) / 4096 + 2) * 4096
        try Sys.pwriteAll(fd, [UInt8](repeating: 0xA5, count: 3000), at: Int64(tearAt))
        Sys.close(fd)
        var expected = old
        expected.replaceSubrange(8192..<28_192, with: new)
        if readerCompletes {
            let r = try f.alice.session.open(at: p)
            #expect(try r.read(at: 0, count: 100_000) == expected, "a reader completes the write first")
            try r.close()
        } else {
            let w = try f.alice.session.open(at: p, writable: true)
            #expect(try w.read(at: 0, count: 100_000) == expected, "a writer completes the write first")
            try w.close()
        }
        #expect(TestFiles.read(p) == after, "the record is gone and the file is as the uninterrupted write left it")
    }

    @Test("a record torn before its payload was complete is dropped, and the old data stays")
    func tornRecord() throws {
        try expectTornRecordDropped(size: 30_000, torn: 5_000) { info in
            WriteJournal(target: 0, dataEnd: info.physicalDataLength, payload: [UInt8](repeating: 7, count: 8248))
        }
    }

    /// Encrypts a file of `size` bytes, puts down the footer of `record(info)` and the first `torn` bytes of its
    /// payload, as a crash can leave them; then an open must drop the record and find the old file unchanged.
    func expectTornRecordDropped(size: Int, torn: Int, _ record: (EncryptedFileInfo) -> WriteJournal) throws {
        let f = try Fixture()
        let old = TestFiles.bytes(size, seed: UInt64(size))
        let p = f.file("k.bin", old)
        try f.alice.session.encryptFile(at: p)
        let before = TestFiles.read(p)
        let fd = try Sys.open(p, .readWrite)
        let info = try EncryptedFileInfo.read(fd, path: p)
        let dataOffset = UInt64(info.header.dataOffset)
        let r = record(info)
        try Sys.pwriteAll(fd, r.footer(fileID: info.header.fileID), at: Int64(dataOffset + r.footerOffset(dataOffset: dataOffset)))
        try Sys.pwriteAll(fd, (r.payload ?? [])[0..<torn], at: Int64(dataOffset + r.dataEnd))
        Sys.close(fd)
        let reader = try f.alice.session.open(at: p)
        #expect(try reader.read(at: 0, count: size + 100_000) == old)
        try reader.close()
        #expect(TestFiles.read(p) == before, "the torn record is cut off at the old end of the data")
    }

    @Test("regression: a torn record of a write that grows the last partial block leaves the file as it was")
    func tornExtendingRecord() throws {
        // Found by the mount crash sweep: appending to a 100 000-byte file re-seals its partial last block at full
        // length, so the record's region ends past the old one; torn, it used to be cut off at that new end, which
        // left the old partial block followed by zeros (failing authentication) instead of as it was.
        let sbs = UInt64(ContentCipher.storedBlockSize)
        try expectTornRecordDropped(size: 100_000, torn: 0) { info in
            // What the writer puts down first for 65 536 bytes at 100 000: blocks 24…40, from the old last block on.
            let r = WriteJournal(target: 24 * sbs, regionBefore: info.physicalDataLength, payload: [UInt8](repeating: 7, count: Int(17 * sbs)))
            #expect(r.dataEnd > info.physicalDataLength)
            return r
        }
    }

    @Test("deferred size updates are published by sync and close")
    func deferred() throws {
        let f = try Fixture()
        let p = f.file("d.bin", [])
        try f.alice.session.encryptFile(at: p)
        let w = try f.alice.session.open(at: p, writable: true, deferSizeUpdates: true)
        try w.write([UInt8](repeating: 7, count: 10_000), at: 0)
        // A writer excludes other EFS opens; the size on disk is read without the lock.
        #expect(throws: EFSError(.sharingViolation, "")) { try f.alice.session.open(at: p) }
        func sizeOnDisk() throws -> UInt64 {
            let fd = try Sys.open(p, .readOnly)
            defer { Sys.close(fd) }
            return try f.alice.session.plaintextSize(of: fd, path: p)
        }
        #expect(try sizeOnDisk() == 0)  // not yet published: old content
        try w.sync()
        #expect(try sizeOnDisk() == 10_000)
        try w.write([1], at: 10_000)
        try w.close()
        #expect(try f.alice.session.open(at: p).read(at: 9_999, count: 5) == [7, 1])
    }
}
