// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFS
import EFSCore
import EFSSystem
import EFSTestSupport
import Foundation
import SystemPackage
import Testing

/// Each test here pins a bug found in review; the name says what went wrong.
@Suite("Regressions")
struct RegressionTests {
    @Test("fsck --repair removes a temporary directory holding only a directory marker, and keeps one holding more")
    func fsckRemovesTemporaryDirectory() throws {
        // What a crash in `efs restore` leaves: a directory made under a temporary name, with or without the
        // marker imported into it, not yet renamed into place.
        let f = try Fixture()
        let secret = f.volume.appending("secret"), litter = f.volume.appending(".secret\(TemporaryName.marker)abc")
        try FileManager.default.createDirectory(atPath: secret.string, withIntermediateDirectories: false)
        try f.alice.session.encryptFile(at: secret)
        try FileManager.default.moveItem(atPath: secret.string, toPath: litter.string)
        #expect(f.alice.session.isEncryptedDirectory(litter))
        let other = f.volume.appending(".kept\(TemporaryName.marker)def")
        try FileManager.default.createDirectory(atPath: other.string, withIntermediateDirectories: false)
        TestFiles.write(other.appending("data"), Array("not ours".utf8))
        let report = FileSystemCheck(session: nil, repair: true).check(f.volume)
        #expect(report.litterRemoved == [litter])
        #expect(!TestFiles.exists(litter))
        #expect(TestFiles.read(other.appending("data")) == Array("not ours".utf8))
        #expect(report.problems.map(\.path) == [other] && report.problems.first?.kind == .litter)
    }

    @Test("a recovery policy listing one certificate twice still encrypts readable files")
    func duplicateRecoveryAgent() throws {
        let f = try Fixture()
        let policy = f.volume.appending(".efs/recovery-policy.pem")
        TestFiles.write(policy, TestFiles.read(policy) + Array(f.agent.certificate.pem.utf8))
        let p = f.file("dup.txt", Array("dup".utf8))
        try f.alice.session.encryptFile(at: p)
        #expect(try f.alice.session.open(at: p).read(at: 0, count: 3) == Array("dup".utf8))
        #expect(try f.alice.session.queryRecoveryAgents(at: p).count == 1)
    }

    @Test("after a user is removed the old metadata slot is cleared")
    func oldSlotCleared() throws {
        let f = try Fixture()
        let bob = try TestUser("bob", in: f.dir)
        let p = f.file("s.txt", Array("slots".utf8))
        try f.alice.session.encryptFile(at: p)
        try f.alice.session.addUsers(at: p, certificates: [bob.certificate])
        try f.alice.session.removeUsers(at: p, thumbprints: [bob.certificate.thumbprint])
        let b = TestFiles.read(p)
        let cap = Int(b[32]) | Int(b[33]) << 8 | Int(b[34]) << 16 | Int(b[35]) << 24
        let slots = [Array(b[4096..<(4096 + 64)]), Array(b[(4096 + cap)..<(4096 + cap + 64)])]
        #expect(slots.filter { $0.contains { $0 != 0 } }.count == 1)
        #expect(throws: EFSError(.noKey, "")) { try bob.session.open(at: p) }
    }

    @Test("shrinking into a block and growing again keeps every block readable")
    func shrinkThenGrow() throws {
        let f = try Fixture()
        let plain = TestFiles.bytes(20_000, seed: 3)
        let p = f.file("g.bin", plain)
        try f.alice.session.encryptFile(at: p)
        let w = try f.alice.session.open(at: p, writable: true)
        try w.truncate(to: 5_000)
        try w.truncate(to: 4_500)
        try w.write([9, 9], at: 4_600)
        try w.truncate(to: 7_000)
        try w.close()
        var expected = Array(plain[0..<4_500]) + [UInt8](repeating: 0, count: 2_500)
        expected[4_600] = 9
        expected[4_601] = 9
        #expect(try f.alice.session.open(at: p).read(at: 0, count: 10_000) == expected)
    }

    @Test("rekey by a recovery agent does not add the agent as a user")
    func rekeyAsAgent() throws {
        let f = try Fixture()
        let p = f.file("ra.txt", [1])
        try f.alice.session.encryptFile(at: p)
        let agentUser = try f.agent.store.generateKey(name: "agent as user", kind: .p256, recoveryAgent: false, passphrase: nil)
        _ = agentUser
        let r = try f.agent.session.rekey(at: p, recursive: false)
        #expect(r.map(\.outcome) == [.unchanged])
        #expect(try f.alice.session.queryUsers(at: p).map(\.displayName) == ["alice"])
    }

    @Test("file names near NAME_MAX in a multi-byte script can be encrypted")
    func longNames() throws {
        let f = try Fixture()
        let name = String(repeating: "é", count: 120)  // 240 bytes
        let p = f.file(name, [1, 2, 3])
        try f.alice.session.encryptFile(at: p)
        #expect(try f.alice.session.fileEncryptionStatus(at: p) == .encrypted)
    }

    @Test("a volume is found only through a regular .efs/volume.conf (smbnetfs shows every name as a directory that reads EIO)")
    func volumeConfigMustBeAFile() throws {
        let dir = TemporaryDirectory()
        let inner = dir.appending("a/b")
        try FileManager.default.createDirectory(atPath: dir.appending("a/.efs/volume.conf").string, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: inner.string, withIntermediateDirectories: true)
        // Before: "cannot read: Is a directory", so no volume could be made below such a name.
        #expect(try Volume.find(containing: inner) == nil)
        let v = try Volume.initialize(at: inner, recoveryAgents: [])
        #expect(try Volume.find(containing: inner.appending("x"))?.root == v.root)
    }

    @Test("a recovery agent certificate cannot become the current key")
    func agentNotCurrent() throws {
        let f = try Fixture()
        #expect(throws: EFSError(.invalidArgument, "")) { try f.agent.store.setCurrent(f.agent.certificate.thumbprint) }
    }
}

@Suite("Regressions from the code review")
struct ReviewRegressionTests {
    @Test("two writers cannot hold one file at once (lost size records)")
    func oneWriter() throws {
        let f = try Fixture()
        let p = f.file("w.bin", [1, 2, 3])
        try f.alice.session.encryptFile(at: p)
        let a = try f.alice.session.open(at: p, writable: true)
        #expect(throws: EFSError(.sharingViolation, "")) { try f.alice.session.open(at: p, writable: true) }
        #expect(throws: EFSError(.sharingViolation, "")) { try RawContext.open(p, flags: []) }
        try a.close()
        let r = try f.alice.session.open(at: p)
        #expect(throws: EFSError(.sharingViolation, "")) { try f.alice.session.open(at: p, writable: true) }
        try r.close()
    }

    @Test("a 1…28-byte torn tail after the last block does not make the file unopenable")
    func tornTail() throws {
        let f = try Fixture()
        let plain = TestFiles.bytes(8_192, seed: 11)  // whole blocks: the tail is a torn start of block 2
        let p = f.file("t.bin", plain)
        try f.alice.session.encryptFile(at: p)
        TestFiles.write(p, TestFiles.read(p) + [UInt8](repeating: 0x55, count: 9))
        let w = try f.alice.session.open(at: p, writable: true)
        #expect(try w.read(at: 0, count: 20_000) == plain)
        try w.write([7], at: 8_192)
        try w.close()
        #expect(try f.alice.session.open(at: p).read(at: 0, count: 20_000) == plain + [7])
    }

    @Test("encrypt seals user xattrs and decrypt opens them again")
    func xattrsThroughEncryptDecrypt() throws {
        let f = try Fixture()
        let p = f.file("x.txt", [1])
        let fd = try Sys.open(p, .readWrite)
        do { try Sys.setXattr(fd, "user.note", Array("plain note".utf8)) } catch { Sys.close(fd); return }
        Sys.close(fd)
        try f.alice.session.encryptFile(at: p)
        let enc = try Sys.open(p, .readOnly)
        #expect(try !Sys.listXattrs(enc).contains("user.note"))
        #expect(try !contains(Sys.getXattr(enc, "user.efs.x.user.note"), Array("plain".utf8)))
        Sys.close(enc)
        let h = try f.alice.session.open(at: p)
        #expect(try h.extendedAttribute("user.note") == Array("plain note".utf8))
        try h.close()
        try f.alice.session.decryptFile(at: p)
        let dec = try Sys.open(p, .readOnly)
        #expect(try Sys.getXattr(dec, "user.note") == Array("plain note".utf8))
        #expect(try !Sys.listXattrs(dec).contains { $0.hasPrefix("user.efs.x.") })
        Sys.close(dec)
    }

    @Test("encrypted xattrs of every size survive export and import", arguments: [1, 4_096, 4_100, 4_124, 8_221, 60_000])
    func namedStreamSizes(size: Int) throws {
        let f = try Fixture()
        let p = f.file("n.bin", [1])
        try f.alice.session.encryptFile(at: p)
        let w = try f.alice.session.open(at: p, writable: true)
        let value = TestFiles.bytes(size, seed: UInt64(size))
        do { try w.setExtendedAttribute("user.big", value) } catch { try w.close(); return }
        try w.close()
        let dst = f.volume.appending("n2.bin")
        try importRaw(try exportRaw(p), to: dst)
        #expect(try f.alice.session.open(at: dst).extendedAttribute("user.big") == value)
    }

    @Test("a last block followed by zeros (a torn redo record of a growing write, cut at its dataEnd) reads as it was",
          arguments: [1, 27, 4_124 - 1_836, 9_000, 300_000])
    func zeroExtendedLastBlock(zeros: Int) throws {
        let f = try Fixture()
        let old = TestFiles.bytes(10_000, seed: 61)
        let p = f.file("g.bin", old)
        try f.alice.session.encryptFile(at: p)
        let before = TestFiles.read(p)
        TestFiles.write(p, before + [UInt8](repeating: 0, count: zeros))
        let r = try f.alice.session.open(at: p)
        #expect(try r.read(at: 0, count: 20_000) == old)
        try r.close()
        #expect(TestFiles.read(p).count == before.count + zeros, "a reader changes nothing")
        let w = try f.alice.session.open(at: p, writable: true)
        #expect(TestFiles.read(p) == before, "a writer cuts the zeros off")
        try w.write(Array("more".utf8), at: 10_000)
        try w.close()
        #expect(try f.alice.session.open(at: p).read(at: 0, count: 20_000) == old + Array("more".utf8))
    }

    @Test("zeros after a last block that is damaged are not taken for a zero extension")
    func damagedLastBlockStillFails() throws {
        let f = try Fixture()
        let p = f.file("h.bin", TestFiles.bytes(10_000, seed: 62))
        try f.alice.session.encryptFile(at: p)
        var bytes = TestFiles.read(p)
        bytes[bytes.count - 20] ^= 1
        TestFiles.write(p, bytes + [UInt8](repeating: 0, count: 500))
        #expect(throws: EFSError.self) { try f.alice.session.open(at: p).read(at: 0, count: 20_000) }
    }

}
