// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFS
import EFSCore
import EFSSystem
import EFSTestSupport
import Foundation
import Synchronization
import SystemPackage
import Testing

@Suite("efs mount", .enabled(if: FUSE.isAvailable, "needs /dev/fuse and fusermount3"))
struct MountTests {
    @Test("a tree copied into an encrypted directory lands encrypted and reads back")
    func copyTreeIn() throws {
        let m = try MountedVolume()
        defer { m.unmount() }
        let src = m.dir.appending("src")
        var files: [(String, [UInt8])] = []
        for (i, size) in [0, 1, 4095, 4096, 4097, 70_000, 300_001].enumerated() {
            files.append(("\(i < 4 ? "" : "deep/er/")f\(i).bin", TestFiles.bytes(size, seed: UInt64(i) + 100)))
        }
        try FileManager.default.createDirectory(atPath: src.appending("deep/er").string, withIntermediateDirectories: true)
        for (name, bytes) in files { TestFiles.write(src.appending(name), bytes) }
        #expect(FUSE.run("/bin/cp", ["-r", src.string, m.m("secret").string]) == 0)

        for (name, bytes) in files {
            let shown = m.m("secret/src/\(name)")
            #expect(try F.read(shown) == bytes, "\(name) reads back")
            #expect(try Sys.stat(shown).size == Int64(bytes.count), "stat shows the plaintext size of \(name)")
            let stored = try F.read(m.b("secret/src/\(name)"))
            #expect(FileHeader.hasMagic(stored), "\(name) is encrypted on the backing store")
            if bytes.count >= 64 {
                for at in stride(from: 0, to: bytes.count - 16, by: max(1, bytes.count / 7)) {
                    #expect(!F.contains(stored, Array(bytes[at..<(at + 16)])), "no plaintext of \(name) at \(at) in the backing file")
                }
            }
        }
        // New directories in an encrypted directory are encrypted too, and their markers are hidden.
        #expect(TestFiles.exists(m.b("secret/src/deep/er/\(DirectoryMarker.name)")))
        #expect(try !FileManager.default.contentsOfDirectory(atPath: m.m("secret/src/deep/er").string).contains(DirectoryMarker.name))
        // Outside encrypted directories files stay plain, byte for byte.
        let plain = TestFiles.bytes(10_000, seed: 7)
        try F.write(m.m("plain.bin"), plain)
        #expect(TestFiles.read(m.b("plain.bin")) == plain)
    }

    @Test("the daemon takes FUSE_HANDLE_KILLPRIV_V2: writes come without a GETXATTR of security.capability before each")
    func noCapabilityQueryPerWrite() throws {
        // libfuse's debug output names every request; the kernel asks once per new inode, then marks it S_NOSEC.
        let m = try MountedVolume(options: ["--debug"])
        defer { m.unmount() }
        for name in ["secret/w.bin", "plain.bin"] {
            let fd = try Sys.open(m.m(name), [.writeOnly, .create, .exclusive], mode: [.ownerReadWrite])
            for i in 0..<20 { try Sys.pwriteAll(fd, TestFiles.bytes(100, seed: UInt64(i)), at: Int64(i) * 100) }
            Sys.close(fd)
        }
        m.unmount()
        let log = m.log
        let writes = log.components(separatedBy: "opcode: WRITE ").count - 1
        let queries = log.components(separatedBy: "opcode: GETXATTR ").count - 1
        #expect(writes >= 40, "the debug log shows the writes (\(writes))")
        #expect(queries <= 2, "\(queries) GETXATTRs for \(writes) writes")
        #expect(try F.read(m.b("plain.bin")).count == 2000)
    }

    @Test("mmap: shared writes through the page cache reach the encrypted file, and reads see them")
    func mmapShared() throws {
        let m = try MountedVolume()
        defer { m.unmount() }
        let p = m.m("secret/map.bin")
        var model = TestFiles.bytes(100_003, seed: 11)
        try F.write(p, model)
        let fd = try Sys.open(p, .readWrite)
        let map = try Sys.mapShared(fd, length: model.count)
        #expect(TestFiles.same(Array(map), model), "a mapping reads the plaintext")
        for (i, at) in [0, 4095, 4096, 50_000, 100_000].enumerated() {
            let patch = TestFiles.bytes(3, seed: UInt64(i))
            for (k, b) in patch.enumerated() {
                map[at + k] = b
                model[at + k] = b
            }
        }
        try Sys.unmap(map)  // msync(MS_SYNC) writes the dirty pages back through the mount
        #expect(TestFiles.same(try Sys.pread(fd, count: 200_000, at: 0), model), "read(2) sees the mapped writes")
        Sys.close(fd)
        #expect(!F.contains(try F.read(m.b("secret/map.bin")), Array(model[50_000..<50_016])), "no plaintext on the backing store")
        let f = try openWhenReleased(m.alice.session, m.b("secret/map.bin"))
        defer { try? f.close() }
        #expect(TestFiles.same(try f.read(at: 0, count: 200_000), model), "the backing file decrypts to the mapped writes")
    }

    @Test("concurrent writers on one file (disjoint ranges, separate descriptors) and readers of stable ranges")
    func concurrentWriters() throws {
        let m = try MountedVolume()
        defer { m.unmount() }
        let p = m.m("secret/shared.bin")
        let stable = TestFiles.bytes(64 * 1024, seed: 5)
        try F.write(p, stable)  // the first 64 KiB never change; writers work above them
        let writers = 4, chunk = 40_000, rounds = 25
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: writers + 2) { k in
            do {
                let fd = try Sys.open(p, .readWrite)
                defer { Sys.close(fd) }
                for r in 0..<rounds {
                    if k < writers {
                        let at = stable.count + k * chunk
                        try Sys.pwriteAll(fd, TestFiles.bytes(chunk, seed: UInt64(k * 1000 + r)), at: Int64(at))
                    } else {
                        let got = try Sys.pread(fd, count: stable.count, at: 0)
                        if !TestFiles.same(got, stable) { failures.withLock { $0.append("reader \(k) round \(r) saw changed bytes") } }
                    }
                }
            } catch {
                failures.withLock { $0.append("thread \(k): \(error)") }
            }
        }
        #expect(failures.withLock { $0 } == [])
        var expected = stable
        for k in 0..<writers { expected += TestFiles.bytes(chunk, seed: UInt64(k * 1000 + rounds - 1)) }
        #expect(TestFiles.same(try F.read(p), expected), "each writer's last round is in place")
    }

    @Test("chown, statfs, fsync of files and directories, RENAME_EXCHANGE, mkdir and rmdir")
    func moreCalls() throws {
        let m = try MountedVolume()
        defer { m.unmount() }
        try F.write(m.m("secret/x"), [1])
        try F.write(m.m("secret/y"), [2, 2])
        // chown (as root) shows through and reaches the backing file.
        let fd = try Sys.open(m.m("secret/x"), .readWrite)
        try Sys.fchown(fd, uid: 65534, gid: 65534)
        try Sys.fsync(fd)
        Sys.close(fd)
        #expect(try Sys.stat(m.m("secret/x")).uid == 65534)
        #expect(try Sys.stat(m.b("secret/x")).gid == 65534)
        // statfs answers for the backing file system.
        let dirfd = try Sys.open(m.m("secret"), [.directory])
        let st = try Sys.fileSystemStatistics(dirfd)
        #expect(st.blocks > 0)
        try Sys.fsync(dirfd)  // fsyncdir
        Sys.close(dirfd)
        // RENAME_EXCHANGE swaps two encrypted files, contents and all.
        let sdir = try Sys.open(m.m("secret"), [.directory])
        defer { Sys.close(sdir) }
        try Sys.renameat2(sdir, "x", sdir, "y", flags: .exchange)
        #expect(try F.read(m.m("secret/x")) == [2, 2])
        #expect(try F.read(m.m("secret/y")) == [1])
        // mkdir keeps the exact mode asked for (umask aside), rmdir of an empty encrypted directory works.
        try Sys.mkdir(m.m("secret/sub"))
        #expect(TestFiles.exists(m.b("secret/sub/\(DirectoryMarker.name)")), "new directories in encrypted ones are encrypted")
        try Sys.rmdir(m.m("secret/sub"))
        #expect(!TestFiles.exists(m.b("secret/sub")))
    }

    @Test("a tree with many more files than the daemon may hold descriptors: the kernel is asked to forget old ones",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit")))
    func manyFiles() throws {
        // 256 descriptors: without pruning, the daemon would fail with EMFILE after about 250 looked-up objects.
        let m = try MountedVolume(daemonPrefix: ["/usr/bin/prlimit", "--nofile=256:256"])
        defer { m.unmount() }
        let count = 1_500
        for i in 0..<count {
            let dir = m.m("secret/d\(i % 10)")
            if i < 10 { try Sys.mkdir(dir) }
            try F.write(dir.appending("f\(i)"), Array("file \(i)".utf8))
        }
        var seen = 0
        for d in 0..<10 { seen += try FileManager.default.contentsOfDirectory(atPath: m.m("secret/d\(d)").string).count }
        #expect(seen == count)
        for i in stride(from: 0, to: count, by: 97) {
            #expect(try F.read(m.m("secret/d\(i % 10)/f\(i)")) == Array("file \(i)".utf8))
        }
        #expect(!m.log.contains("Too many open files"), "\(m.log)")
    }

    @Test("a copied-in tree that holds a .efs directory is data: directories and files below it still work")
    func copiedVolumeConfig() throws {
        let m = try MountedVolume()
        defer { m.unmount() }
        // What copying a tree with a swift-efs volume in it (this repository's test fixtures, say) does.
        try Sys.mkdir(m.m("secret/copy"))
        try Sys.mkdir(m.m("secret/copy/.efs"))
        try F.write(m.m("secret/copy/.efs/volume.conf"), Array("id = 0123\n".utf8) + [UInt8](repeating: 0x41, count: 5000))
        try Sys.mkdir(m.m("secret/copy/sub"))
        try F.write(m.m("secret/copy/sub/file"), [1, 2, 3])
        #expect(try F.read(m.m("secret/copy/sub/file")) == [1, 2, 3])
        #expect(FileHeader.hasMagic(TestFiles.read(m.b("secret/copy/sub/file"))), "encrypted for the mounted volume")
        #expect(!m.log.contains("larger than"), "\(m.log)")
    }

    @Test("truncate by path grows with zeros and shrinks; O_TRUNC, O_APPEND and O_EXCL")
    func truncateAndOpenFlags() throws {
        let m = try MountedVolume()
        defer { m.unmount() }
        let p = m.m("secret/t.bin")
        let data = TestFiles.bytes(10_000, seed: 3)
        try F.write(p, data)
        try Sys.truncate(p, 50_000)  // truncate(2): a setattr without an open file
        #expect(try Sys.stat(p).size == 50_000)
        #expect(try F.read(p) == data + [UInt8](repeating: 0, count: 40_000))
        #expect(truncate(p, to: 4_100) == 0)  // ftruncate(2): a setattr of an open file
        #expect(try F.read(p) == Array(data[0..<4_100]))
        let fd = try Sys.open(p, [.writeOnly, .append])
        try Sys.pwriteAll(fd, Array("tail".utf8), at: 0)
        Sys.close(fd)
        #expect(try F.read(p) == Array(data[0..<4_100]) + Array("tail".utf8))
        let tr = try Sys.open(p, [.writeOnly, .truncate])
        Sys.close(tr)
        #expect(try Sys.stat(p).size == 0)
        #expect(F.errno { _ = try Sys.open(p, [.writeOnly, .create, .exclusive]) } == .fileExists)
    }

    private func truncate(_ p: FilePath, to size: Int64) -> Int32 {
        do {
            let fd = try Sys.open(p, .writeOnly)
            defer { Sys.close(fd) }
            try Sys.ftruncate(fd, size)
            return 0
        } catch { return -1 }
    }

    @Test("rename over an existing file and directory; RENAME_NOREPLACE")
    func renameOver() throws {
        let m = try MountedVolume()
        defer { m.unmount() }
        try F.write(m.m("secret/a"), Array("new version".utf8))
        try F.write(m.m("secret/b"), Array("old version that is longer".utf8))
        try Sys.rename(m.m("secret/a"), m.m("secret/b"))
        #expect(try F.read(m.m("secret/b")) == Array("new version".utf8))
        #expect(!TestFiles.exists(m.m("secret/a")))
        // An empty (encrypted) directory can be renamed over and removed, although its marker is in it.
        try Sys.mkdir(m.m("secret/d1"))
        try Sys.mkdir(m.m("secret/d2"))
        try F.write(m.m("secret/d1/inside"), [1, 2, 3])
        try Sys.rename(m.m("secret/d1"), m.m("secret/d2"))
        #expect(try F.read(m.m("secret/d2/inside")) == [1, 2, 3])
        try Sys.mkdir(m.m("secret/d3"))
        try Sys.rmdir(m.m("secret/d3"))
        #expect(!TestFiles.exists(m.b("secret/d3")))
        #expect(F.errno { try Sys.rmdir(m.m("secret/d2")) } == .directoryNotEmpty)
        #expect(TestFiles.exists(m.b("secret/d2/\(DirectoryMarker.name)")), "a failed rmdir keeps the marker")
        try F.write(m.m("secret/c"), [9])
        #expect(F.errno { try Sys.renameNoReplace(m.m("secret/c"), m.m("secret/b")) } == .fileExists)
        #expect(try F.read(m.m("secret/b")) == Array("new version".utf8))
    }

    @Test("unlink of an open file keeps it readable and writable until close")
    func unlinkWhileOpen() throws {
        let m = try MountedVolume()
        defer { m.unmount() }
        let p = m.m("secret/u.bin")
        let data = TestFiles.bytes(20_000, seed: 5)
        try F.write(p, data)
        let fd = try Sys.open(p, .readWrite)
        try Sys.unlink(p)
        #expect(!TestFiles.exists(p))
        try Sys.pwriteAll(fd, Array("more".utf8), at: 20_000)
        #expect(try Sys.pread(fd, count: 30_000, at: 0) == data + Array("more".utf8))
        Sys.close(fd)
        #expect(try FileManager.default.contentsOfDirectory(atPath: m.b("secret").string) == [DirectoryMarker.name])
    }

    @Test("symlinks and hard links")
    func links() throws {
        let m = try MountedVolume()
        defer { m.unmount() }
        try F.write(m.m("secret/target"), Array("linked".utf8))
        try FileManager.default.createSymbolicLink(atPath: m.m("secret/sym").string, withDestinationPath: "target")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: m.m("secret/sym").string) == "target")
        #expect(try F.read(m.m("secret/sym")) == Array("linked".utf8))
        try FileManager.default.linkItem(atPath: m.m("secret/target").string, toPath: m.m("secret/hard").string)
        let a = try Sys.stat(m.m("secret/target")), b = try Sys.stat(m.m("secret/hard"))
        #expect(a.inode == b.inode && a.linkCount == 2 && b.size == 6)
        // Both names share one open handle: a write through one reads through the other.
        let fd = try Sys.open(m.m("secret/hard"), .readWrite)
        try Sys.pwriteAll(fd, Array("LINKED".utf8), at: 0)
        let rd = try Sys.open(m.m("secret/target"), .readOnly)
        #expect(try Sys.pread(rd, count: 10, at: 0) == Array("LINKED".utf8))
        Sys.close(rd)
        Sys.close(fd)
    }

    @Test("chmod, utimens and exact directory modes")
    func modesAndTimes() throws {
        let m = try MountedVolume()
        defer { m.unmount() }
        try F.write(m.m("secret/f"), [1])
        try Sys.chmod(m.m("secret/f"), 0o640)
        #expect(try Sys.stat(m.m("secret/f")).mode & 0o7777 == 0o640)
        #expect(try Sys.stat(m.b("secret/f")).mode & 0o7777 == 0o640)
        let when = Date(timeIntervalSince1970: 1_000_000_000)
        try FileManager.default.setAttributes([.modificationDate: when], ofItemAtPath: m.m("secret/f").string)
        #expect(try Sys.stat(m.m("secret/f")).modificationTime.tv_sec == 1_000_000_000)
        // A file written and then given a time keeps that time after close (the deferred size is written first).
        let fd = try Sys.open(m.m("secret/g"), [.writeOnly, .create], mode: [.ownerReadWrite])
        try Sys.pwriteAll(fd, TestFiles.bytes(5_000, seed: 1), at: 0)
        try Sys.futimens(fd, access: timespec(tv_sec: 2_000_000, tv_nsec: 0), modification: timespec(tv_sec: 2_000_000, tv_nsec: 0))
        Sys.close(fd)
        Thread.sleep(forTimeInterval: 0.2)
        #expect(try Sys.stat(m.b("secret/g")).modificationTime.tv_sec == 2_000_000)
        #expect(try Sys.stat(m.m("secret/g")).size == 5_000)
        // Exactly the mode asked for, less the caller's umask (not forced to u+rwx, even where a marker is written).
        let umask = Sys.currentUmask()
        try Sys.mkdir(m.m("secret/ro"), mode: 0o500)
        try Sys.mkdir(m.m("plain-dir"), mode: 0o751)
        #expect(try Sys.stat(m.m("secret/ro")).mode & 0o7777 == 0o500 & ~umask)
        #expect(try Sys.stat(m.b("secret/ro")).mode & 0o7777 == 0o500 & ~umask)
        #expect(try Sys.stat(m.m("plain-dir")).mode & 0o7777 == 0o751 & ~umask)
    }

    @Test("user.* attributes of encrypted files are stored encrypted; others pass through")
    func extendedAttributes() throws {
        let m = try MountedVolume()
        defer { m.unmount() }
        try F.write(m.m("secret/x"), [1])
        let value = Array("a secret note in an attribute".utf8)
        let fd = try Sys.open(m.m("secret/x"), .readWrite)
        try Sys.setXattr(fd, "user.comment", value)
        #expect(try Sys.getXattr(fd, "user.comment") == value)
        #expect(try Sys.listXattrs(fd).contains("user.comment"))
        Sys.close(fd)
        let backing = try Sys.open(m.b("secret/x"), .readOnly)
        let names = try Sys.listXattrs(backing)
        #expect(names.contains(NamedStreams.backingPrefix + "user.comment"))
        #expect(!names.contains("user.comment"))
        let stored = try Sys.getXattr(backing, NamedStreams.backingPrefix + "user.comment")
        #expect(!F.contains(stored, Array(value[0..<12])))
        Sys.close(backing)
        let again = try Sys.open(m.m("secret/x"), .readWrite)
        try Sys.removeXattr(again, "user.comment")
        #expect(F.errno { _ = try Sys.getXattr(again, "user.comment") }?.rawValue == 61)  // ENODATA
        Sys.close(again)
        try F.write(m.m("p"), [2])
        let pfd = try Sys.open(m.m("p"), .readWrite)
        try Sys.setXattr(pfd, "user.plain", [7, 8])
        Sys.close(pfd)
        let pb = try Sys.open(m.b("p"), .readOnly)
        #expect(try Sys.getXattr(pb, "user.plain") == [7, 8])
        Sys.close(pb)
    }

    @Test("a file without a key of the user gives EACCES and a log line; others still open")
    func noKey() throws {
        let m = try MountedVolume()
        defer { m.unmount() }
        let bob = try TestUser("bob", in: m.dir)
        let p = m.b("bobs.txt")
        TestFiles.write(p, Array("for bob only".utf8))
        try bob.session.encryptFile(at: p)
        let before = TestFiles.read(p)
        #expect(F.errno { _ = try Sys.open(m.m("bobs.txt"), .readOnly) } == .permissionDenied)
        #expect(try Sys.stat(m.m("bobs.txt")).size >= 12)
        #expect(TestFiles.read(p) == before, "the file is left intact")
        Thread.sleep(forTimeInterval: 0.1)
        #expect(m.log.contains("bobs.txt"))
        #expect(m.log.contains("no key"))
        try F.write(m.m("secret/mine"), [1, 2])
        #expect(try F.read(m.m("secret/mine")) == [1, 2])
    }

    @Test("with allow_other, another uid may not use the mounting user's keys", .enabled(if: geteuid() == 0))
    func otherUsers() throws {
        let m = try MountedVolume(options: ["-o", "allow_other"])
        defer { m.unmount() }
        try F.write(m.m("secret/mine.txt"), Array("alice's secret".utf8))
        try F.write(m.m("public.txt"), Array("everyone".utf8))
        for p in [m.dir.path, m.mountpoint] { try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: p.string) }
        func catAsNobody(_ path: FilePath) -> Int32 {
            FUSE.run("/usr/bin/setpriv", ["--reuid", "65534", "--regid", "65534", "--clear-groups", "/bin/cat", path.string])
        }
        #expect(catAsNobody(m.m("public.txt")) == 0)
        #expect(catAsNobody(m.m("secret/mine.txt")) != 0)
        // Nor through extended attributes or truncate (they would use the key too).
        try? Sys.setXattr(try Sys.open(m.m("secret/mine.txt"), .readOnly), "user.note", Array("hidden".utf8))
        let py = "import os,sys\ntry:\n  os.getxattr(sys.argv[1],'user.note'); sys.exit(0)\nexcept PermissionError: sys.exit(13)\nexcept OSError: sys.exit(1)"
        #expect(FUSE.run("/usr/bin/setpriv", ["--reuid", "65534", "--regid", "65534", "--clear-groups", "/usr/bin/env", "python3", "-c", py, m.m("secret/mine.txt").string]) == 13)
        Thread.sleep(forTimeInterval: 0.1)
        #expect(m.log.contains("may not use the keys of this mount"))
        #expect(try F.read(m.m("secret/mine.txt")) == Array("alice's secret".utf8))
    }

    @Test("a damaged block gives EIO for that file only")
    func damagedBlock() throws {
        let m = try MountedVolume()
        defer { m.unmount() }
        let good = TestFiles.bytes(200_000, seed: 11)
        try F.write(m.m("secret/bad.bin"), good)
        try F.write(m.m("secret/good.bin"), good)
        let backing = m.b("secret/bad.bin")
        let fd = try Sys.open(backing, .readOnly)
        let info = try EncryptedFileInfo.read(fd, path: backing)
        Sys.close(fd)
        TestFiles.flipBit(backing, at: Int(info.header.dataOffset) + 100)
        #expect(F.errno { _ = try F.read(m.m("secret/bad.bin")) } == .ioError)
        // The rest of the damaged file still reads (the kernel asks for the failed range again on its own).
        let rd = try Sys.open(m.m("secret/bad.bin"), .readOnly)
        #expect(try Sys.pread(rd, count: 4_096, at: 150_000) == Array(good[150_000..<154_096]))
        Sys.close(rd)
        #expect(try F.read(m.m("secret/good.bin")) == good)
        #expect(m.log.contains("bad.bin"))
    }

    @Test("raw export of a file the mount has open is a sharing violation; after close it works")
    func rawExportOfOpenFile() throws {
        let m = try MountedVolume()
        defer { m.unmount() }
        try F.write(m.m("secret/open.bin"), TestFiles.bytes(10_000, seed: 2))
        let fd = try Sys.open(m.m("secret/open.bin"), .readOnly)
        #expect(throws: EFSError(.sharingViolation, "")) { try RawContext.open(m.b("secret/open.bin"), flags: []) }
        Sys.close(fd)
        // Release reaches the daemon shortly after close returns.
        var ctx: RawContext?
        for _ in 0..<100 where ctx == nil {
            ctx = try? RawContext.open(m.b("secret/open.bin"), flags: [])
            if ctx == nil { Thread.sleep(forTimeInterval: 0.02) }
        }
        let c = try #require(ctx)
        var stream: [UInt8] = []
        try c.read { stream += $0 }
        c.close()
        #expect(stream.count > 10_000)
    }

    @Test("a raw-imported file appears in the mount and opens")
    func rawImport() throws {
        let m = try MountedVolume()
        defer { m.unmount() }
        let plain = TestFiles.bytes(100_000, seed: 21)
        let src = m.b("secret/orig.bin")
        TestFiles.write(src, plain)
        try m.alice.session.encryptFile(at: src)
        let ex = try RawContext.open(src, flags: [])
        var stream: [UInt8] = []
        try ex.read { stream += $0 }
        ex.close()
        let imp = try RawContext.open(m.b("secret/imported.bin"), flags: [.createForImport])
        var pos = 0
        try imp.write { max in
            let n = min(max, stream.count - pos)
            defer { pos += n }
            return Array(stream[pos..<(pos + n)])
        }
        imp.close()
        #expect(try FileManager.default.contentsOfDirectory(atPath: m.m("secret").string).contains("imported.bin"))
        #expect(try F.read(m.m("secret/imported.bin")) == plain)
        #expect(try Sys.stat(m.m("secret/imported.bin")).size == 100_000)
    }

    @Test("the config directory, markers and temporary names are hidden and cannot be made")
    func hiddenNames() throws {
        let m = try MountedVolume()
        defer { m.unmount() }
        #expect(try !FileManager.default.contentsOfDirectory(atPath: m.mountpoint.string).contains(Volume.configDirectoryName))
        #expect(try FileManager.default.contentsOfDirectory(atPath: m.m("secret").string).isEmpty)
        #expect(F.errno { _ = try Sys.stat(m.m(".efs")) } == .noSuchFileOrDirectory)
        #expect(F.errno { _ = try Sys.open(m.m("secret/\(DirectoryMarker.name)"), .readOnly) } == .noSuchFileOrDirectory)
        #expect(F.errno { try F.write(m.m("secret/\(DirectoryMarker.name)"), [1]) } == .notPermitted)
        #expect(F.errno { try Sys.mkdir(m.m(".efs")) } == .notPermitted)
        #expect(F.errno { try F.write(m.m("x\(TemporaryName.marker)1"), [1]) } == .notPermitted)
        try F.write(m.m("secret/f"), [1])
        #expect(F.errno { try Sys.rename(m.m("secret/f"), m.m("secret/\(DirectoryMarker.name)")) } == .notPermitted)
        #expect(try Sys.lstat(m.b("secret/\(DirectoryMarker.name)")).size > 0, "the marker is untouched")
    }

    @Test("SIGTERM unmounts cleanly")
    func sigterm() throws {
        let m = try MountedVolume()
        defer { m.unmount() }
        try F.write(m.m("secret/s"), [1, 2, 3])
        m.stopWithSignal()
        #expect(!FUSE.isMounted(m.mountpoint))
        #expect(m.exitStatus == 0)
        let f = try m.alice.session.open(at: m.b("secret/s"))
        #expect(try f.read(at: 0, count: 10) == [1, 2, 3])
        try f.close()
    }
}

/// Opens `path` with the library, retrying while the mount still holds it (its release follows close(2) shortly).
func openWhenReleased(_ session: EFSSession, _ path: FilePath) throws -> EncryptedFile {
    var lastError: EFSError?
    for _ in 0..<300 {
        let result = Result { () throws(EFSError) -> EncryptedFile in try session.open(at: path) }
        switch result {
        case .success(let f): return f
        case .failure(let e):
            guard e.code == .sharingViolation else { throw e }
            lastError = e
            Thread.sleep(forTimeInterval: 0.01)
        }
    }
    throw lastError!
}
