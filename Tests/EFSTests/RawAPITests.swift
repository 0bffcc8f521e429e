// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFS
import EFSCore
import EFSSystem
import EFSTestSupport
import Foundation
import SystemPackage
import Testing

func exportRaw(_ path: FilePath, flags: RawFlags = []) throws -> [UInt8] {
    let ctx = try RawContext.open(path, flags: flags)
    defer { ctx.close() }
    let expected = try ctx.streamLength()
    var out: [UInt8] = []
    try ctx.read { out += $0 }
    #expect(UInt64(out.count) == expected, "streamLength() must predict the export exactly")
    return out
}

func importRaw(_ stream: [UInt8], to path: FilePath, flags: RawFlags = [.createForImport], chunk: Int = 65_536) throws {
    let ctx = try RawContext.open(path, flags: flags)
    defer { ctx.close() }
    try feed(ctx, stream, chunk: chunk)
}

/// Writes `stream` through an import context, `chunk` bytes at most per callback.
func feed(_ ctx: RawContext, _ stream: [UInt8], chunk: Int = 65_536) throws {
    var pos = 0
    try ctx.write { max in
        let n = min(max, chunk, stream.count - pos)
        defer { pos += n }
        return Array(stream[pos..<(pos + n)])
    }
}

@Suite("Raw export and import")
struct RawAPITests {
    @Test("round trip to another volume and another user store", arguments: [0, 1, 4095, 4096, 4097, 61_440, 61_441, 65_537, 2 * 1_048_576 + 3])
    func roundTrip(size: Int) throws {
        let f = try Fixture()
        let plain = TestFiles.bytes(size, seed: UInt64(size) + 1)
        let p = f.file("r.bin", plain)
        try f.alice.session.encryptFile(at: p)
        let stream = try exportRaw(p)
        #expect(Array(stream[4..<12]) == Array("R\0O\0B\0S\0".utf8))
        if size >= 16 { #expect(!contains(stream, Array(plain[(size / 2)..<(size / 2 + 16)]))) }
        // Another machine: a different directory tree, the same users' keys.
        let other = TemporaryDirectory()
        let dst = other.appending("restored.bin")
        try importRaw(stream, to: dst, chunk: 7_777)
        let file = try f.alice.session.open(at: dst)
        #expect(file.size == UInt64(size))
        #expect(try file.read(at: 0, count: size + 1) == plain)
        try file.close()
        #expect(try f.agent.session.open(at: dst).read(at: 0, count: size) == plain)
        let mallory = try TestUser("mallory", in: other)
        #expect(throws: EFSError(.noKey, "")) { try mallory.session.open(at: dst) }
        // Export of the import is byte-identical.
        #expect(try exportRaw(dst) == stream)
    }

    @Test("sparse files travel with their holes left out")
    func sparse() throws {
        let f = try Fixture()
        let p = f.file("s.bin", Array("start".utf8))
        try f.alice.session.encryptFile(at: p)
        let w = try f.alice.session.open(at: p, writable: true)
        try w.truncate(to: 64 << 20)
        try w.write(Array("end".utf8), at: (32 << 20))
        try w.close()
        let stream = try exportRaw(p)
        #expect(stream.count < 300_000)
        let dst = f.volume.appending("s2.bin")
        try importRaw(stream, to: dst)
        let r = try f.alice.session.open(at: dst)
        #expect(r.size == 64 << 20)
        #expect(try r.read(at: 32 << 20, count: 3) == Array("end".utf8))
        #expect(try r.read(at: 0, count: 5) == Array("start".utf8))
        #expect(try r.read(at: (64 << 20) - 2, count: 2) == [0, 0])
    }

    @Test("directories export their metadata and named streams; import recreates them")
    func directories() throws {
        let f = try Fixture()
        let d = f.volume.appending("dir")
        try FileManager.default.createDirectory(atPath: d.string, withIntermediateDirectories: false)
        try f.alice.session.encryptFile(at: d)
        let stream = try exportRaw(d, flags: [.createForDirectory])
        // A directory's stream has no ::$DATA stream.
        #expect(!contains(stream, Array("::$DATA".utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] })))
        let dst = f.volume.appending("dir2")
        try importRaw(stream, to: dst, flags: [.createForImport, .createForDirectory])
        #expect(try f.alice.session.fileEncryptionStatus(at: dst) == .encrypted)
        #expect(try f.alice.session.queryUsers(at: dst).map(\.displayName) == ["alice"])
        #expect(throws: EFSError(.invalidArgument, "")) { try RawContext.open(f.file("x", [1]), flags: [.createForDirectory]) }
    }

    @Test("named streams (encrypted extended attributes) round trip and can be dropped")
    func namedStreams() throws {
        let f = try Fixture()
        let p = f.file("n.bin", [1, 2, 3])
        try f.alice.session.encryptFile(at: p)
        let fd = try Sys.open(p, .readWrite)
        let sealed = [UInt8](repeating: 0x5A, count: 40)
        do { try Sys.setXattr(fd, "user.efs.x.user.comment", sealed) } catch { Sys.close(fd); return }  // no xattrs here
        Sys.close(fd)
        let stream = try exportRaw(p)
        let dst = f.volume.appending("n2.bin")
        try importRaw(stream, to: dst)
        let fd2 = try Sys.open(dst, .readOnly)
        #expect(try Sys.getXattr(fd2, "user.efs.x.user.comment") == sealed)
        Sys.close(fd2)
        let dropped = try exportRaw(p, flags: [.dropAlternateStreams])
        #expect(dropped.count < stream.count)
        let dst3 = f.volume.appending("n3.bin")
        try importRaw(stream, to: dst3, flags: [.createForImport, .dropAlternateStreams])
        let fd3 = try Sys.open(dst3, .readOnly)
        #expect(try !Sys.listXattrs(fd3).contains("user.efs.x.user.comment"))
        Sys.close(fd3)
    }

    @Test("a named stream the target cannot store is refused with its cause, and the import leaves nothing")
    func namedStreamTooBigForTarget() throws {
        // ext4 keeps a file's extended attributes in one block (4 KiB here); tmpfs takes values up to 64 KiB. A
        // stream exported from tmpfs with a 20 KB named stream must fail on ext4 naming the cause, not as EIO.
        let f = try Fixture()
        let p = f.file("big.bin", TestFiles.bytes(5_000, seed: 41))
        try f.alice.session.encryptFile(at: p)
        let shm = FilePath("/dev/shm/efs-test-\(UInt64.random(in: 0...UInt64.max))")
        defer { try? Sys.unlink(shm) }
        TestFiles.write(shm, TestFiles.read(p))
        let fd = try Sys.open(shm, .readWrite)
        let big = TestFiles.bytes(20_000, seed: 42)
        do { try Sys.setXattr(fd, "user.efs.x.user.big", big) } catch { Sys.close(fd); return }  // no tmpfs xattrs here
        Sys.close(fd)
        let stream = try exportRaw(shm)
        let dst = f.volume.appending("big2.bin")
        let e = #expect(throws: EFSError.self) { try importRaw(stream, to: dst) }
        #expect(e?.code == .notSupported && e?.message.contains("no room for named stream user.big (20000 bytes)") == true, "\(String(describing: e))")
        let names = try Sys.listDirectory(f.volume).map(\.name)
        #expect(!TestFiles.exists(dst) && !names.contains(where: TemporaryName.isTemporary), "\(names)")
        try importRaw(stream, to: dst, flags: [.createForImport, .dropAlternateStreams])
        #expect(try f.alice.session.open(at: dst).read(at: 0, count: 10_000) == TestFiles.bytes(5_000, seed: 41))
    }

    @Test("a truncated stream at any offset leaves no file and does not touch an existing one")
    func truncatedStreams() throws {
        let f = try Fixture()
        let p = f.file("t.bin", TestFiles.bytes(130_000, seed: 4))
        try f.alice.session.encryptFile(at: p)
        let stream = try exportRaw(p)
        let existing = f.file("existing.bin", Array("keep me".utf8))
        for cut in Array(0..<300) + Array(stride(from: 300, to: stream.count, by: 1_021)) {
            let fresh = f.volume.appending("fresh.bin")
            #expect(throws: EFSError.self, "cut \(cut)") { try importRaw(Array(stream[0..<cut]), to: fresh, chunk: 1_000) }
            #expect(!TestFiles.exists(fresh), "cut \(cut)")
            #expect(throws: EFSError.self) { try importRaw(Array(stream[0..<cut]), to: existing) }
            #expect(TestFiles.read(existing) == Array("keep me".utf8))
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: f.volume.string).filter { $0.contains(".efs-tmp-") }
        #expect(leftovers.isEmpty)
        // Corrupt bytes inside the stream: rejected at import or at read, never wrong plaintext.
        for pos in stride(from: 20, to: stream.count, by: 997) {
            var bad = stream
            bad[pos] ^= 0x40
            let dst = f.volume.appending("bad.bin")
            try? FileManager.default.removeItem(atPath: dst.string)
            if (try? importRaw(bad, to: dst)) != nil {
                let ok = (try? f.alice.session.open(at: dst).read(at: 0, count: 200_000)) == TestFiles.bytes(130_000, seed: 4)
                let readable = (try? f.alice.session.open(at: dst).read(at: 0, count: 200_000)) != nil
                #expect(ok || !readable, "flip at \(pos) decrypted to wrong bytes")
            }
        }
    }

    @Test("malformed streams are ERROR_NOT_EXPORT_FORMAT")
    func notExportFormat() throws {
        let f = try Fixture()
        let e = try #require(throws: EFSError.self) { try importRaw(Array("not a raw stream at all".utf8), to: f.volume.appending("x")) }
        #expect(e.code == .notExportFormat)
        #expect(e.win32Code == 6008)
    }

    @Test("context rules: one write, no read on import, no write on export, close twice, sharing violations")
    func contextRules() throws {
        let f = try Fixture()
        let p = f.file("c.bin", [1, 2, 3])
        try f.alice.session.encryptFile(at: p)
        let stream = try exportRaw(p)
        let exp = try RawContext.open(p, flags: [])
        #expect(throws: EFSError(.invalidOperation, "")) { try exp.write { _ in [] } }
        #expect(throws: EFSError(.sharingViolation, "")) { try RawContext.open(p, flags: []) }
        #expect(throws: EFSError(.sharingViolation, "")) { try f.alice.session.open(at: p) }
        try exp.read { _ in }
        #expect(throws: EFSError(.invalidOperation, "")) { try exp.read { _ in } }
        exp.close()
        exp.close()
        #expect(throws: EFSError(.invalidOperation, "")) { try exp.read { _ in } }
        let handle = try f.alice.session.open(at: p)
        #expect(throws: EFSError(.sharingViolation, "")) { try RawContext.open(p, flags: []) }
        #expect(throws: EFSError(.sharingViolation, "")) { try RawContext.open(p, flags: [.createForImport]) }
        try handle.close()
        let imp = try RawContext.open(f.volume.appending("new.bin"), flags: [.createForImport])
        #expect(throws: EFSError(.invalidOperation, "")) { try imp.read { _ in } }
        var pos = 0
        try imp.write { max in
            let n = min(max, stream.count - pos)
            defer { pos += n }
            return Array(stream[pos..<(pos + n)])
        }
        #expect(throws: EFSError(.invalidOperation, "")) { try imp.write { _ in [] } }
        imp.close()
        // Not encrypted → ERROR_FILE_NOT_ENCRYPTED.
        let plain = f.file("plain.txt", [1])
        let e = try #require(throws: EFSError.self) { try RawContext.open(plain, flags: []) }
        #expect(e.win32Code == 6007)
        #expect(throws: EFSError(.fileNotFound, "")) { try RawContext.open(f.volume.appending("missing"), flags: []) }
    }

    @Test("callbacks that fail abort cleanly on both sides")
    func callbackAbort() throws {
        let f = try Fixture()
        let p = f.file("a.bin", TestFiles.bytes(200_000, seed: 9))
        try f.alice.session.encryptFile(at: p)
        let ctx = try RawContext.open(p, flags: [])
        var calls = 0
        let e = try #require(throws: EFSError.self) {
            try ctx.read { _ in
                calls += 1
                if calls == 2 { throw RawCallbackError(code: 1_234) }
            }
        }
        ctx.close()
        #expect(e.code == .aborted)
        #expect(e.win32Code == 1_234)
        let stream = try exportRaw(p)
        let dst = f.volume.appending("aborted.bin")
        let imp = try RawContext.open(dst, flags: [.createForImport])
        var pos = 0
        #expect(throws: EFSError(.aborted, "")) {
            try imp.write { max in
                if pos > 100_000 { throw RawCallbackError(code: 5) }
                let n = min(max, stream.count - pos)
                defer { pos += n }
                return Array(stream[pos..<(pos + n)])
            }
        }
        imp.close()
        #expect(!TestFiles.exists(dst))
    }

    @Test("hidden targets need OVERWRITE_HIDDEN; existing files need the import flag only")
    func hidden() throws {
        let f = try Fixture()
        let p = f.file("h.bin", [7])
        try f.alice.session.encryptFile(at: p)
        let stream = try exportRaw(p)
        let hiddenFile = f.file(".hidden", [1])
        #expect(throws: EFSError(.accessDenied, "")) { try importRaw(stream, to: hiddenFile) }
        try importRaw(stream, to: hiddenFile, flags: [.createForImport, .overwriteHidden])
        #expect(try f.alice.session.open(at: hiddenFile).read(at: 0, count: 1) == [7])
        let visible = f.file("visible", [1])
        try importRaw(stream, to: visible)
        #expect(try f.alice.session.open(at: visible).read(at: 0, count: 1) == [7])
    }
}

@Suite("Encrypted extended attributes")
struct ExtendedAttributeTests {
    @Test("values are stored sealed, bound to their name and file, and travel in the raw stream")
    func xattrs() throws {
        let f = try Fixture()
        let p = f.file("x.bin", [1])
        try f.alice.session.encryptFile(at: p)
        let w = try f.alice.session.open(at: p, writable: true)
        do { try w.setExtendedAttribute("user.comment", Array("top secret note".utf8)) } catch {
            try w.close()
            return  // the file system has no user xattrs
        }
        try w.setExtendedAttribute("user.other", [9])
        #expect(try w.listExtendedAttributes() == ["user.comment", "user.other"])
        #expect(try w.extendedAttribute("user.comment") == Array("top secret note".utf8))
        #expect(try w.extendedAttribute("user.missing") == nil)
        try w.close()
        let fd = try Sys.open(p, .readWrite)
        let stored = try Sys.getXattr(fd, "user.efs.x.user.comment")
        #expect(!contains(stored, Array("secret".utf8)))
        // A value moved to another name fails authentication.
        try Sys.setXattr(fd, "user.efs.x.user.other", stored)
        Sys.close(fd)
        let r = try f.alice.session.open(at: p)
        #expect(throws: EFSError(.authenticationFailed, "")) { try r.extendedAttribute("user.other") }
        try r.close()
        // Export/import carries them; the recovery agent reads them after the move.
        let dst = f.volume.appending("x2.bin")
        try importRaw(try exportRaw(p), to: dst)
        let a = try f.agent.session.open(at: dst)
        #expect(try a.extendedAttribute("user.comment") == Array("top secret note".utf8))
        try a.close()
    }

    @Test("an import opened on a directory lands there even if its path is swapped for a symbolic link meanwhile")
    func importRelativeToOpenDirectory() throws {
        let f = try Fixture()
        let plain = TestFiles.bytes(10_000, seed: 7)
        let p = f.file("x.bin", plain)
        try f.alice.session.encryptFile(at: p)
        let stream = try exportRaw(p)
        let d = f.volume.appending("d")
        let dir = f.volume.appending("dir")
        try FileManager.default.createDirectory(atPath: d.string, withIntermediateDirectories: false)
        let srcDir = f.volume.appending("src-dir")
        try FileManager.default.createDirectory(atPath: srcDir.string, withIntermediateDirectories: false)
        try f.alice.session.encryptFile(at: srcDir)
        let dirStream = try exportRaw(srcDir, flags: [.createForDirectory])
        let outside = TemporaryDirectory()
        for (name, s, flags) in [("x.bin", stream, RawFlags.createForImport), ("sub", dirStream, [.createForImport, .createForDirectory])] {
            let fd = try Sys.open(d, [.readOnly, .directory])
            defer { Sys.close(fd) }
            let ctx = try RawContext.openForImport(in: fd, name: name, path: d.appending(name), flags: flags)
            defer { ctx.close() }
            // A hostile local user moves the directory away and puts a link to elsewhere in its place.
            try Sys.rename(d, dir)
            try FileManager.default.createSymbolicLink(atPath: d.string, withDestinationPath: outside.path.string)
            try feed(ctx, s)
            ctx.close()
            #expect(try FileManager.default.contentsOfDirectory(atPath: outside.path.string).isEmpty, "nothing lands through the link")
            try FileManager.default.removeItem(atPath: d.string)
            try Sys.rename(dir, d)
        }
        #expect(try f.alice.session.open(at: d.appending("x.bin")).read(at: 0, count: plain.count + 1) == plain)
        #expect(try f.alice.session.fileEncryptionStatus(at: d.appending("sub")) == .encrypted)
        #expect(try FileManager.default.contentsOfDirectory(atPath: d.string).sorted() == ["sub", "x.bin"], "no temporary left")
        // The same rules as a path open: names, hidden targets, existing objects, sharing.
        let fd = try Sys.open(d, [.readOnly, .directory])
        defer { Sys.close(fd) }
        for bad in ["", ".", "..", "a/b"] {
            #expect(throws: EFSError(.invalidArgument, "")) { try RawContext.openForImport(in: fd, name: bad, path: d, flags: [.createForImport]) }
        }
        #expect(throws: EFSError(.alreadyExists, "")) {
            try RawContext.openForImport(in: fd, name: "sub", path: d.appending("sub"), flags: [.createForImport])
        }
        let held = try RawContext.open(d.appending("x.bin"), flags: [])
        #expect(throws: EFSError(.sharingViolation, "")) {
            try RawContext.openForImport(in: fd, name: "x.bin", path: d.appending("x.bin"), flags: [.createForImport])
        }
        held.close()
        TestFiles.write(d.appending(".hidden"), [1])
        #expect(throws: EFSError(.accessDenied, "")) {
            try RawContext.openForImport(in: fd, name: ".hidden", path: d.appending(".hidden"), flags: [.createForImport])
        }
    }

    @Test("an import refuses a final symbolic link swapped in for the existing target")
    func importDoesNotFollowSwappedTarget() throws {
        let f = try Fixture()
        let p = f.file("y.bin", TestFiles.bytes(5_000, seed: 9))
        try f.alice.session.encryptFile(at: p)
        let stream = try exportRaw(p)
        let elsewhere = TemporaryDirectory()
        let victim = elsewhere.appending("victim")
        TestFiles.write(victim, Array("keep me".utf8))
        // Replace y.bin with a link to the victim after the existing target was checked: the import must replace
        // the link, never write through it.
        let ctx = try RawContext.open(p, flags: [.createForImport])
        defer { ctx.close() }
        try Sys.unlink(p)
        try FileManager.default.createSymbolicLink(atPath: p.string, withDestinationPath: victim.string)
        try feed(ctx, stream)
        #expect(TestFiles.read(victim) == Array("keep me".utf8))
        #expect(try Sys.lstat(p).kind == .regular)
    }


    @Test("import from a descriptor: large reads, batched writes, holes between data runs", arguments: [0, 4_097, 9 * 1_048_576 + 5])
    func importFromDescriptor(size: Int) throws {
        let f = try Fixture()
        let plain = TestFiles.bytes(size, seed: UInt64(size) + 3)
        let p = f.file("d.bin", plain)
        try f.alice.session.encryptFile(at: p)
        // Holes between data runs (a sparse file): the importer must not batch across them.
        let w = try f.alice.session.open(at: p, writable: true)
        try w.truncate(to: UInt64(size) + (40 << 20))
        try w.write(Array("middle".utf8), at: UInt64(size) + (20 << 20))
        try w.write(Array("tail".utf8), at: UInt64(size) + (40 << 20) - 4)
        try w.close()
        let streamPath = f.dir.appending("d.raw")
        let out = try Sys.open(streamPath, [.writeOnly, .create, .truncate], mode: [.ownerReadWrite])
        let ctx = try RawContext.open(p, flags: [])
        try ctx.export(to: out)
        ctx.close()
        Sys.close(out)
        let input = try Sys.open(streamPath, .readOnly)
        defer { Sys.close(input) }
        let dst = f.volume.appending("d2.bin")
        let imp = try RawContext.open(dst, flags: [.createForImport])
        try imp.importStream(from: input)
        imp.close()
        let r = try f.alice.session.open(at: dst)
        #expect(r.size == UInt64(size) + (40 << 20))
        #expect(try r.read(at: 0, count: size) == plain)
        #expect(try r.read(at: UInt64(size) + (20 << 20), count: 6) == Array("middle".utf8))
        #expect(try r.read(at: UInt64(size) + (40 << 20) - 4, count: 10) == Array("tail".utf8))
        #expect(try r.read(at: UInt64(size) + (10 << 20), count: 3) == [0, 0, 0])
        try r.close()
        #expect(try exportRaw(dst) == TestFiles.read(streamPath))
    }

}
