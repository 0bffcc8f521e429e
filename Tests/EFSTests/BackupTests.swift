// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFS
import EFSArchive
import EFSCore
import EFSSystem
import EFSTestSupport
import Foundation
import SystemPackage
import Testing

// MARK: - Helpers

/// Runs `body` with a descriptor open on `path` (created and truncated when writing).
func withFile<T>(_ path: FilePath, write: Bool = false, _ body: (FileDescriptor) throws -> T) throws -> T {
    let fd = write ? try Sys.open(path, [.writeOnly, .create, .truncate], mode: [.ownerReadWrite]) : try Sys.open(path, .readOnly)
    defer { Sys.close(fd) }
    return try body(fd)
}

/// Sets a file's times without following a symbolic link, to the nanosecond.
func setTimes(_ path: FilePath, seconds: Int64, nanoseconds: UInt32) throws {
    let dir = try Sys.open(path.removingLastComponent(), [.readOnly, .directory])
    defer { Sys.close(dir) }
    let t = Sys.time(seconds: seconds, nanoseconds: nanoseconds)
    try Sys.lutimensat(dir, path.lastComponent!.string, access: t, modification: t)
}

func setXattr(_ path: FilePath, _ name: String, _ value: [UInt8]) throws {
    let fd = try Sys.open(path, .readOnly)
    defer { Sys.close(fd) }
    try Sys.setXattr(fd, name, value)
}

func getXattr(_ path: FilePath, _ name: String) -> [UInt8]? {
    guard let fd = try? Sys.open(path, .readOnly) else { return nil }
    defer { Sys.close(fd) }
    return try? Sys.getXattr(fd, name)
}

/// Every path below `root` (relative), with `lstat`.
func tree(_ root: FilePath) -> [String: FileStatus] {
    var out: [String: FileStatus] = [:]
    var stack = [""]
    while let rel = stack.popLast() {
        let p = rel.isEmpty ? root : root.appending(rel)
        guard let names = try? Sys.listDirectory(p) else { continue }
        for e in names {
            let r = rel.isEmpty ? e.name : rel + "/" + e.name
            guard let st = try? Sys.lstat(root.appending(r)) else { continue }
            out[r] = st
            if st.kind == .directory { stack.append(r) }
        }
    }
    return out
}

func noTemporaryFiles(_ root: FilePath) -> Bool { !tree(root).keys.contains { $0.contains(TemporaryName.marker) } }

/// Runs a program and returns its status and output.
func runProgram(_ path: String, _ args: [String]) throws -> (status: Int32, out: String, err: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

func backup(_ sources: [FilePath], relativeTo: FilePath?, to archive: FilePath) throws -> (EFSBackup.Summary, [EFSBackup.Issue]) {
    var issues: [EFSBackup.Issue] = []
    let s = try withFile(archive, write: true) { fd in
        try EFSBackup.backup(sources, to: fd, options: .init(relativeTo: relativeTo), issues: { issues.append($0) })
    }
    return (s, issues)
}

func verify(_ archive: FilePath) throws -> (EFSBackup.Summary, [EFSBackup.Issue]) {
    var issues: [EFSBackup.Issue] = []
    let s = try withFile(archive) { fd in try EFSBackup.verify(from: fd, issues: { issues.append($0) }) }
    return (s, issues)
}

func restore(_ archive: FilePath, into dest: FilePath) throws -> (EFSBackup.Summary, [EFSBackup.Issue]) {
    var issues: [EFSBackup.Issue] = []
    let s = try withFile(archive) { fd in try EFSBackup.restore(from: fd, into: dest, issues: { issues.append($0) }) }
    return (s, issues)
}

/// A volume with a tree of every kind of object, plain and encrypted.
struct BackupWorld {
    let f: Fixture
    /// Encrypted files' plaintext, by path relative to the volume's parent.
    var encrypted: [String: [UInt8]] = [:]
    var plain: [String: [UInt8]] = [:]
    static let encryptedSizes = [0, 1, 4_097, 70_000, 300_000]

    init() throws {
        f = try Fixture()
        let v = f.volume
        let fm = FileManager.default
        try fm.createDirectory(atPath: v.appending("tree/sub").string, withIntermediateDirectories: true)
        try fm.createDirectory(atPath: v.appending("tree/vault").string, withIntermediateDirectories: true)
        for (i, size) in Self.encryptedSizes.enumerated() {
            let bytes = TestFiles.bytes(size, seed: 100 + UInt64(i))
            let p = v.appending("tree/enc-\(size).bin")
            TestFiles.write(p, bytes)
            try f.alice.session.encryptFile(at: p)
            encrypted["vol/tree/enc-\(size).bin"] = bytes
        }
        for (name, size) in [("tree/empty", 0), ("tree/small.txt", 13), ("tree/sub/big.bin", 200_000), ("tree/vault/note.txt", 50)] {
            let bytes = TestFiles.bytes(size, seed: UInt64(size) + 7)
            TestFiles.write(v.appending(name), bytes)
            plain["vol/" + name] = bytes
        }
        // An encrypted directory holding an encrypted file and a plain one.
        try f.alice.session.encryptFile(at: v.appending("tree/vault"))
        let inside = TestFiles.bytes(5_000, seed: 77)
        TestFiles.write(v.appending("tree/vault/inside.bin"), inside)
        try f.alice.session.encryptFile(at: v.appending("tree/vault/inside.bin"))
        encrypted["vol/tree/vault/inside.bin"] = inside
        // Links, a FIFO, modes, attributes, times.
        try fm.createSymbolicLink(atPath: v.appending("tree/link").string, withDestinationPath: "small.txt")
        try fm.linkItem(atPath: v.appending("tree/small.txt").string, toPath: v.appending("tree/sub/hard").string)
        let dir = try Sys.open(v.appending("tree"), [.readOnly, .directory])
        try Sys.mkfifoat(dir, "pipe", mode: 0o640)
        Sys.close(dir)
        try Sys.chmod(v.appending("tree/small.txt"), 0o640)
        try Sys.chmod(v.appending("tree/enc-4097.bin"), 0o600)
        try Sys.chmod(v.appending("tree/sub"), 0o750)
        try setXattr(v.appending("tree/small.txt"), "user.comment", Array("a plain note".utf8))
        try setXattr(v.appending("tree/enc-70000.bin"), "user.tag", [0, 1, 2, 0xFF])
        // A sealed named stream (its value is opaque here): it must travel inside the raw stream.
        try setXattr(v.appending("tree/enc-70000.bin"), NamedStreams.backingPrefix + "user.secret", [UInt8](repeating: 0x5A, count: 40))
        try setXattr(v.appending("tree/sub"), "user.dir", Array("on a directory".utf8))
        for (i, name) in ["tree/small.txt", "tree/enc-1.bin", "tree/sub/big.bin", "tree/link", "tree/vault/inside.bin", "tree/sub", "tree/vault", "tree"].enumerated() {
            try setTimes(v.appending(name), seconds: 1_600_000_000 + Int64(i), nanoseconds: 123_456_789 + UInt32(i))
        }
    }
}

// MARK: - Tests

@Suite("efs backup, verify and restore")
struct BackupTests {
    @Test("a tree of every kind goes to another machine and back; only the users and the agent can read it")
    func roundTrip() throws {
        let w = try BackupWorld()
        let f = w.f
        let archive = f.dir.appending("backup.tar")
        let (summary, issues) = try backup(["vol"], relativeTo: f.dir.path, to: archive)
        #expect(issues.isEmpty, "\(issues)")
        #expect(summary.failures == 0)
        #expect(summary.rawStreams == BackupWorld.encryptedSizes.count + 2)  // files, inside.bin, the vault directory
        let bytes = TestFiles.read(archive)
        #expect(UInt64(bytes.count) == summary.bytes)

        // The archive never holds plaintext of an encrypted file, nor the sealed named stream as a pax record.
        for (path, plain) in w.encrypted where plain.count >= 16 {
            for at in [0, plain.count / 2, plain.count - 16] {
                #expect(!contains(bytes, Array(plain[at..<(at + 16)])), "\(path) at \(at)")
            }
        }
        #expect(!contains(bytes, Array("SCHILY.xattr.user.efs.x.".utf8)))
        #expect(contains(bytes, Array("SCHILY.xattr.user.tag=".utf8)))
        #expect(!contains(bytes, Array("\(TemporaryName.marker)".utf8)))

        // verify: every structure, no key.
        let (checked, vIssues) = try verify(archive)
        #expect(vIssues.isEmpty, "\(vIssues)")
        #expect(checked.entries == summary.entries)
        #expect(checked.rawStreams == summary.rawStreams)

        // GNU tar lists every entry.
        let listed = try runProgram("/usr/bin/tar", ["--warning=no-unknown-keyword", "-tvf", archive.string])
        #expect(listed.status == 0, "\(listed.err)")
        var ours: [String] = []
        var reader = ArchiveReader()
        reader.append(bytes)
        while let e = try reader.next() { ours.append(e.path) }
        let tarNames = try runProgram("/usr/bin/tar", ["--warning=no-unknown-keyword", "-tf", archive.string]).out
            .split(separator: "\n").map { $0.hasSuffix("/") ? String($0.dropLast()) : String($0) }
        #expect(tarNames == ours)
        for expected in ["vol", "vol/.efs", "vol/.efs/volume.conf", "vol/tree/vault", "vol/tree/vault/.efs-dir", "vol/tree/vault/inside.bin",
                         "vol/tree/link", "vol/tree/sub/hard", "vol/tree/pipe", "vol/tree/enc-0.bin", "vol/tree/sub/big.bin"] {
            #expect(ours.contains(expected), "\(expected)")
            #expect(listed.out.contains(expected), "\(expected)")
        }
        #expect(ours.filter { $0.hasSuffix(DirectoryMarker.name) } == ["vol/tree/vault/.efs-dir"])
        #expect(ArchiveEntry.efsDirectoryStreamName == DirectoryMarker.name)

        // Another machine: a fresh directory, the same users' key stores.
        let machine = TemporaryDirectory()
        let dest = machine.appending("restored")
        let (restored, rIssues) = try restore(archive, into: dest)
        #expect(rIssues.isEmpty, "\(rIssues)")
        #expect(restored.failures == 0)
        #expect(restored.entries == summary.entries)
        #expect(noTemporaryFiles(dest))

        let before = tree(f.dir.appending("vol"))
        let after = tree(dest.appending("vol"))
        #expect(Set(before.keys) == Set(after.keys))
        for (rel, a) in before {
            guard let b = after[rel] else { continue }
            #expect(a.kind == b.kind, "\(rel)")
            #expect(a.mode == b.mode, "\(rel): mode \(String(a.mode, radix: 8)) vs \(String(b.mode, radix: 8))")
            #expect(a.uid == b.uid && a.gid == b.gid, "\(rel)")
            if !rel.hasSuffix(DirectoryMarker.name) {  // a marker is recreated by the import
                #expect(a.modificationTime.tv_sec == b.modificationTime.tv_sec && a.modificationTime.tv_nsec == b.modificationTime.tv_nsec,
                        "\(rel): mtime")
            }
            if a.kind == .regular, !rel.hasSuffix(DirectoryMarker.name), w.encrypted["vol/" + rel] == nil {
                #expect(TestFiles.same(TestFiles.read(f.dir.appending("vol/" + rel)), TestFiles.read(dest.appending("vol/" + rel))), "\(rel)")
            }
        }
        let r = dest.appending("vol/tree")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: r.appending("link").string) == "small.txt")
        #expect(after["tree/sub/hard"]?.inode == after["tree/small.txt"]?.inode)
        #expect(after["tree/pipe"]?.isFIFO == true)
        #expect(getXattr(r.appending("small.txt"), "user.comment") == Array("a plain note".utf8))
        #expect(getXattr(r.appending("sub"), "user.dir") == Array("on a directory".utf8))
        #expect(getXattr(r.appending("enc-70000.bin"), "user.tag") == [0, 1, 2, 0xFF])
        #expect(getXattr(r.appending("enc-70000.bin"), NamedStreams.backingPrefix + "user.secret") == [UInt8](repeating: 0x5A, count: 40))
        #expect(TestFiles.read(dest.appending("vol/.efs/volume.conf")) == TestFiles.read(f.volume.appending(".efs/volume.conf")))

        // The users and the recovery agent read the restored files; a stranger cannot.
        let mallory = try TestUser("mallory", in: machine)
        for (path, plain) in w.encrypted {
            let p = dest.appending(path)
            for user in [f.alice, f.agent] {
                let file = try user.session.open(at: p)
                #expect(file.size == UInt64(plain.count), "\(path)")
                #expect(TestFiles.same(try file.read(at: 0, count: plain.count + 1), plain), "\(path) for \(user.name)")
                try file.close()
            }
            #expect(throws: EFSError(.noKey, "")) { try mallory.session.open(at: p) }
        }
        #expect(try f.alice.session.fileEncryptionStatus(at: r.appending("vault")) == .encrypted)
        #expect(try f.alice.session.queryUsers(at: r.appending("vault")).map(\.displayName) == ["alice"])
        #expect(try f.alice.session.fileEncryptionStatus(at: r.appending("vault/note.txt")) != .encrypted)

        // Restoring again over the restored tree replaces everything in place.
        let (again, aIssues) = try restore(archive, into: dest)
        #expect(again.failures == 0, "\(aIssues)")
        #expect(try f.agent.session.open(at: r.appending("enc-300000.bin")).read(at: 0, count: 10) == Array(w.encrypted["vol/tree/enc-300000.bin"]!.prefix(10)))
        #expect(noTemporaryFiles(dest))
    }

    @Test("restore refuses ../x, absolute paths and symlink escapes, and goes on with the other entries")
    func hostileArchives() throws {
        let f = try Fixture()
        let p = f.file("e.bin", Array("encrypted content".utf8))
        try f.alice.session.encryptFile(at: p)
        let rawStream = try exportRaw(p)
        let outside = f.dir.appending("outside")
        try FileManager.default.createDirectory(atPath: outside.string, withIntermediateDirectories: false)
        TestFiles.write(outside.appending("victim"), Array("untouched".utf8))
        let absolute = f.dir.appending("absolute-target").string

        func member(_ e: ArchiveEntry, _ content: [UInt8] = []) throws -> [UInt8] {
            var e = e
            e.size = UInt64(content.count)
            return try ArchiveWriter.header(for: e) + content + ArchiveWriter.padding(afterContentOfSize: UInt64(content.count))
        }
        var bytes: [UInt8] = []
        bytes += try member(ArchiveEntry(kind: .regular, path: "../x"), Array("escape".utf8))
        bytes += try member(ArchiveEntry(kind: .regular, path: "ok/../../x"), Array("escape".utf8))
        bytes += try member(ArchiveEntry(kind: .regular, path: absolute), Array("escape".utf8))
        bytes += try member(ArchiveEntry(kind: .symbolicLink, path: "esc", linkTarget: outside.string))
        bytes += try member(ArchiveEntry(kind: .regular, path: "esc/pwned"), Array("escape".utf8))
        bytes += try member(ArchiveEntry(kind: .regular, path: "esc/raw.bin", efsRaw: .file), rawStream)
        bytes += try member(ArchiveEntry(kind: .directory, path: "esc/newdir"))
        bytes += try member(ArchiveEntry(kind: .hardLink, path: "hl", linkTarget: "esc/victim"))
        bytes += try member(ArchiveEntry(kind: .hardLink, path: "hl2", linkTarget: "../outside/victim"))
        bytes += try member(ArchiveEntry(kind: .symbolicLink, path: "leaf", linkTarget: outside.appending("victim").string))
        bytes += try member(ArchiveEntry(kind: .regular, path: "leaf"), Array("replaces the link".utf8))
        bytes += try member(ArchiveEntry(kind: .regular, path: "good.txt"), Array("fine".utf8))
        bytes += try member(ArchiveEntry(kind: .regular, path: "good.bin", efsRaw: .file), rawStream)
        bytes += try member(ArchiveEntry(kind: .regular, path: "sub/.efs-dir"), Array("fake marker".utf8))
        bytes += ArchiveWriter.endOfArchive
        let archive = f.dir.write("hostile.tar", bytes)

        let (checked, vIssues) = try verify(archive)
        #expect(checked.failures == 5, "\(vIssues)")  // ../x, ok/../../x, /abs, hl2, sub/.efs-dir
        #expect(vIssues.allSatisfy { $0.error.code == .accessDenied })

        let dest = f.dir.appending("dest")
        let (summary, issues) = try restore(archive, into: dest)
        let failed = Set(issues.filter { !$0.isWarning }.map(\.path))
        #expect(failed == ["../x", "ok/../../x", absolute, "esc/pwned", "esc/raw.bin", "esc/newdir", "hl", "hl2", "sub/.efs-dir"], "\(issues)")
        #expect(summary.failures == failed.count)
        #expect(issues.filter { !$0.isWarning }.allSatisfy { $0.error.code == .accessDenied }, "\(issues)")
        // Nothing escaped.
        #expect(!TestFiles.exists(f.dir.appending("x")))
        #expect(!TestFiles.exists(FilePath(absolute)))
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside.string) == ["victim"])
        #expect(TestFiles.read(outside.appending("victim")) == Array("untouched".utf8))
        // The good entries are there; the link at "leaf" was replaced, not written through.
        #expect(TestFiles.read(dest.appending("good.txt")) == Array("fine".utf8))
        #expect(try f.alice.session.open(at: dest.appending("good.bin")).read(at: 0, count: 100) == Array("encrypted content".utf8))
        #expect((try Sys.lstat(dest.appending("leaf"))).kind == .regular)
        #expect(TestFiles.read(dest.appending("leaf")) == Array("replaces the link".utf8))
        #expect((try Sys.lstat(dest.appending("esc"))).kind == .symlink)
        #expect(!TestFiles.exists(dest.appending("sub/.efs-dir")))
        #expect(noTemporaryFiles(dest))
        #expect(noTemporaryFiles(outside))
    }

    @Test("a truncated archive fails verify and restore with clear errors and leaves no temporary files")
    func truncated() throws {
        let w = try BackupWorld()
        let f = w.f
        let archive = f.dir.appending("full.tar")
        _ = try backup(["vol/tree"], relativeTo: f.dir.path, to: archive)
        let bytes = TestFiles.read(archive)
        // Find the offsets of interesting places: inside a raw stream, inside a plain file, in a header, in the end.
        var reader = ArchiveReader()
        reader.append(bytes)
        var rawStart: UInt64 = 0, plainStart: UInt64 = 0
        while let e = try reader.next() {
            if e.path == "vol/tree/enc-300000.bin" { rawStart = reader.offset }
            if e.path == "vol/tree/sub/big.bin" { plainStart = reader.offset }
        }
        #expect(rawStart > 0 && plainStart > 0)
        let cuts = [Int(rawStart) + 100_000, Int(plainStart) + 50_000, Int(rawStart) - 200, bytes.count - 600, bytes.count - 1, 700]
        for cut in cuts {
            let cutFile = f.dir.write("cut.tar", Array(bytes[0..<cut]))
            let ve = try #require(throws: EFSError.self, "cut \(cut)") { try verify(cutFile) }
            #expect(ve.code == .corrupt, "cut \(cut)")
            #expect(ve.message.contains("truncated"), "cut \(cut): \(ve.message)")
            let dest = f.dir.appending("dest-\(cut)")
            let re = try #require(throws: EFSError.self, "cut \(cut)") { try restore(cutFile, into: dest) }
            #expect(re.code == .corrupt, "cut \(cut)")
            #expect(re.message.contains("truncated"), "cut \(cut): \(re.message)")
            #expect(noTemporaryFiles(dest), "cut \(cut)")
            #expect(noTemporaryFiles(dest.appending("vol/tree")), "cut \(cut)")
        }
        // The cut inside the raw stream: that file is not there at all.
        #expect(!TestFiles.exists(f.dir.appending("dest-\(cuts[0])/vol/tree/enc-300000.bin")))
        #expect(!TestFiles.exists(f.dir.appending("dest-\(cuts[1])/vol/tree/sub/big.bin")))

        // A damaged raw stream inside a well-formed archive: that entry fails, the others are restored.
        var damaged = bytes
        damaged[Int(rawStart) + 4] ^= 0xFF  // inside "ROBS"
        let bad = f.dir.write("damaged.tar", damaged)
        let (checked, vIssues) = try verify(bad)
        #expect(checked.failures == 1)
        #expect(vIssues.first?.error.code == .notExportFormat)
        #expect(vIssues.first?.path == "vol/tree/enc-300000.bin")
        let dest = f.dir.appending("dest-damaged")
        let (summary, issues) = try restore(bad, into: dest)
        #expect(summary.failures == 1, "\(issues)")
        #expect(issues.first?.error.code == .notExportFormat)
        #expect(!TestFiles.exists(dest.appending("vol/tree/enc-300000.bin")))
        #expect(try f.alice.session.open(at: dest.appending("vol/tree/enc-70000.bin")).read(at: 0, count: 70_000) == w.encrypted["vol/tree/enc-70000.bin"])
        #expect(noTemporaryFiles(dest))
    }

    @Test("backup leaves out swift-efs temporary files, refuses '..' sources and reports unreadable ones")
    func sources() throws {
        let f = try Fixture()
        let d = f.volume.appending("d")
        try FileManager.default.createDirectory(atPath: d.string, withIntermediateDirectories: false)
        TestFiles.write(d.appending("kept"), [1])
        TestFiles.write(d.appending(".kept\(TemporaryName.marker)abc"), [2])
        let archive = f.dir.appending("a.tar")
        var issues: [EFSBackup.Issue] = []
        let summary = try withFile(archive, write: true) { fd in
            try EFSBackup.backup(["vol/d", "vol/../vol/d", "vol/missing"], to: fd, options: .init(relativeTo: f.dir.path)) { issues.append($0) }
        }
        #expect(summary.failures == 2)
        #expect(Set(issues.map(\.path)) == ["vol/../vol/d", "vol/missing"])
        #expect(issues.first { $0.path == "vol/missing" }?.error.code == .fileNotFound)
        var names: [String] = []
        var reader = ArchiveReader()
        reader.append(TestFiles.read(archive))
        while let e = try reader.next() { names.append(e.path) }
        #expect(names == ["vol/d", "vol/d/kept"])
    }
}
