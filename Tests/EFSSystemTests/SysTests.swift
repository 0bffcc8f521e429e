// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSSystem
import EFSTestSupport
import SystemPackage
import Testing

@Suite("Sys")
struct SysTests {
    @Test("pwrite/pread round trip, short read at end of file")
    func io() throws {
        let dir = TemporaryDirectory()
        let p = dir.appending("f")
        let fd = try Sys.open(p, [.readWrite, .create, .exclusive])
        defer { Sys.close(fd) }
        try Sys.pwriteAll(fd, [UInt8](repeating: 7, count: 10_000), at: 5)
        #expect(try Sys.pread(fd, count: 20_000, at: 0).count == 10_005)
        #expect(try Sys.pread(fd, count: 3, at: 4) == [0, 7, 7])
        try Sys.ftruncate(fd, 3)
        #expect(try Sys.fstat(fd).size == 3)
        #expect(throws: Errno.fileExists) { try Sys.open(p, [.readWrite, .create, .exclusive]) }
    }

    @Test("OFD locks conflict between open file descriptions, not within one")
    func locks() throws {
        let dir = TemporaryDirectory()
        let p = dir.write("l", [1])
        let a = try Sys.open(p, .readWrite)
        let b = try Sys.open(p, .readWrite)
        // a is closed half way: never close it again, for by then its number may be another test's descriptor (that
        // second close once took the fsx tester's descriptor in a parallel run: "write c: Bad file descriptor").
        var aIsOpen = true
        defer {
            if aIsOpen { Sys.close(a) }
            Sys.close(b)
        }
        #expect(try Sys.tryLockShared(a))
        #expect(try Sys.tryLockShared(b))
        #expect(try !Sys.tryLockExclusive(b))
        Sys.close(a)
        aIsOpen = false
        let c = try Sys.open(p, .readWrite)
        defer { Sys.close(c) }
        #expect(try Sys.tryLockExclusive(b))  // a's lock went with its close
        #expect(try !Sys.tryLockShared(c))
    }

    @Test("renameNoReplace refuses to overwrite")
    func noReplace() throws {
        let dir = TemporaryDirectory()
        let a = dir.write("a", [1]), b = dir.write("b", [2])
        #expect(throws: Errno.fileExists) { try Sys.renameNoReplace(a, b) }
        try Sys.renameNoReplace(a, dir.appending("c"))
        #expect(TestFiles.read(dir.appending("c")) == [1])
    }

    @Test("extended attributes round trip")
    func xattrs() throws {
        let dir = TemporaryDirectory()
        let p = dir.write("x", [1])
        let fd = try Sys.open(p, .readWrite)
        defer { Sys.close(fd) }
        do { try Sys.setXattr(fd, "user.test", [1, 2, 3]) } catch Errno.notSupported { return }
        #expect(try Sys.listXattrs(fd).contains("user.test"))
        #expect(try Sys.getXattr(fd, "user.test") == [1, 2, 3])
        try Sys.removeXattr(fd, "user.test")
        #expect(try !Sys.listXattrs(fd).contains("user.test"))
    }

    @Test("directory listing is sorted and skips dot entries")
    func listing() throws {
        let dir = TemporaryDirectory()
        dir.write("b", [])
        dir.write("a", [])
        try Sys.mkdir(dir.appending("d"))
        let names = try Sys.listDirectory(dir.path)
        #expect(names.map(\.name) == ["a", "b", "d"])
        #expect(names.map(\.isDirectory) == [false, false, true])
    }
}
