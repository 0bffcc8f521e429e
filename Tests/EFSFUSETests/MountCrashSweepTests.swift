// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFS
import EFSCore
import EFSSystem
import EFSTestSupport
import Foundation
import SystemPackage
import Testing

/// Crash injection through the mount (issue 6): the daemon runs with `EFS_CRASH_AT=any:N` and so exits just before
/// its Nth write, fsync, truncate or rename, while a fixed sequence of writes goes through the mount. For every N
/// until the sequence completes, the volume is mounted again and every file must open and hold, block by block, a
/// state it had at some step of the sequence; no temporary name may be visible; and the file system check must
/// name only temporary litter (and interrupted overwrites before the remount completes them), which `--repair`
/// removes.
@Suite("efs mount: crash sweep", .enabled(if: FUSE.isAvailable && FaultInjection.isAvailable, "needs /dev/fuse, fusermount3 and a debug build"))
struct MountCrashSweepTests {
    /// The files of the sequence: their contents before it, and those it leads to.
    enum Data {
        static let a0 = TestFiles.bytes(900_000, seed: 30), a1 = TestFiles.bytes(900_000, seed: 31)
        static let g0 = TestFiles.bytes(100_000, seed: 32), appended = TestFiles.bytes(8 * 65_536, seed: 33)
        static let t0 = TestFiles.bytes(200_000, seed: 34), tWrite = TestFiles.bytes(10_000, seed: 35)
        static let n1 = TestFiles.bytes(4 * 65_536, seed: 36)
        static let p0 = TestFiles.bytes(200_000, seed: 37), p1 = TestFiles.bytes(200_000, seed: 38)
        static let note = Array("a note".utf8)
        static let t1 = Array(t0[0..<50_000]) + [UInt8](repeating: 0, count: 10_000) + tWrite
    }

    /// Every content each path may hold after a crash (nil: absent), block by block.
    static let states: [String: [[UInt8]?]] = [
        "secret/a.bin": [Data.a0, Data.a1],
        "secret/g.bin": [Data.g0, Data.g0 + Data.appended],
        "secret/t.bin": [Data.t0, Array(Data.t0[0..<50_000]), Data.t1],
        "secret/n.bin": [nil, [], Data.n1],
        "secret/m.bin": [nil, Data.n1],
        "plain/p.bin": [Data.p0, Data.p1],
    ]

    /// The files before the sequence, written into the backing store through the library (durably).
    static func prepare(_ m: MountedVolume) throws {
        for (name, bytes) in [("a.bin", Data.a0), ("g.bin", Data.g0), ("t.bin", Data.t0)] {
            guard case .encrypted(let f) = try m.alice.session.createFile(at: m.b("secret/\(name)")) else {
                Issue.record("secret is not an encrypted directory")
                return
            }
            try f.write(bytes, at: 0)
            try f.sync()
            try f.close()
        }
        try FileManager.default.createDirectory(atPath: m.b("plain").string, withIntermediateDirectories: false)
        TestFiles.write(m.b("plain/p.bin"), Data.p0)
    }

    /// The sequence, through the mount: overwrites in place (each with a redo record), appends, a shrink and a
    /// write past the end, a new file renamed, an encrypted extended attribute, a new encrypted directory, a plain
    /// file rewritten, each file fsynced. Returns false at the first call that fails (the daemon died).
    static func run(_ m: MountedVolume) -> Bool {
        func inFile(_ name: String, _ flags: OpenFlags, _ body: (FileDescriptor) throws -> Void) throws {
            let fd = try Sys.open(m.m(name), flags, mode: [.ownerReadWrite])
            defer { Sys.close(fd) }
            try body(fd)
        }
        func writes(_ fd: FileDescriptor, _ bytes: [UInt8], at base: Int) throws {
            for off in stride(from: 0, to: bytes.count, by: 65_536) {
                try Sys.pwriteAll(fd, bytes[off..<min(bytes.count, off + 65_536)], at: Int64(base + off))
            }
            try Sys.fsync(fd)
        }
        do {
            try inFile("secret/a.bin", .readWrite) { try writes($0, Data.a1, at: 0) }
            try inFile("secret/g.bin", .readWrite) { try writes($0, Data.appended, at: Data.g0.count) }
            try inFile("secret/t.bin", .readWrite) { fd in
                try Sys.ftruncate(fd, 50_000)
                try writes(fd, Data.tWrite, at: 60_000)
            }
            try inFile("secret/n.bin", [.readWrite, .create, .exclusive]) { try writes($0, Data.n1, at: 0) }
            try Sys.rename(m.m("secret/n.bin"), m.m("secret/m.bin"))
            try inFile("secret/a.bin", .readOnly) { try Sys.setXattr($0, "user.note", Data.note) }
            try Sys.mkdir(m.m("secret/newdir"), mode: 0o755)
            try inFile("plain/p.bin", .readWrite) { try writes($0, Data.p1, at: 0) }
            return true
        } catch {
            return false
        }
    }

    /// Problems of the remounted volume: a file that does not open, a block no step of the sequence left, a
    /// visible name nothing made, a plain directory where an encrypted one was made.
    static func problems(_ m: MountedVolume) -> [String] {
        var out: [String] = []
        for dir in ["secret", "plain"] {
            let names = ((try? Sys.listDirectory(m.m(dir))) ?? []).map { "\(dir)/\($0.name)" }
            for name in names where states[name] == nil && name != "secret/newdir" { out.append("\(name): a name the sequence never made") }
        }
        let bs = ContentCipher.blockSize
        for (name, allowed) in states.sorted(by: { $0.key < $1.key }) {
            let now: [UInt8]?
            do { now = try F.read(m.m(name)) } catch {
                now = nil
                if error != .noSuchFileOrDirectory { out.append("\(name): does not open: \(error)") }
            }
            guard let now else {
                if !allowed.contains(where: { $0 == nil }) { out.append("\(name): gone") }
                continue
            }
            let sizes = allowed.compactMap { $0?.count }
            if !sizes.contains(now.count) { out.append("\(name): size \(now.count), never one of \(sizes)") }
            for start in stride(from: 0, to: now.count, by: bs) {
                let end = min(now.count, start + bs)
                let ok = allowed.contains { s in
                    guard let s, s.count >= end else { return false }
                    return TestFiles.same(Array(now[start..<end]), Array(s[start..<end]))
                }
                if !ok { out.append("\(name): block at \(start) is in no state of the sequence") }
            }
        }
        if let fd = try? Sys.open(m.m("secret/a.bin"), .readOnly) {
            defer { Sys.close(fd) }
            if let v = try? Sys.getXattr(fd, "user.note"), v != Data.note { out.append("secret/a.bin: user.note is \(v)") }
        }
        if TestFiles.exists(m.b("secret/newdir")), !m.alice.session.isEncryptedDirectory(m.b("secret/newdir")) {
            out.append("secret/newdir: a plain directory where an encrypted one was made")
        }
        return out
    }

    /// Relative paths of temporary names in the backing store.
    static func litter(_ root: FilePath, _ rel: String = "") -> [String] {
        var out: [String] = []
        for e in (try? Sys.listDirectory(root.appending(rel.isEmpty ? "." : rel))) ?? [] {
            let child = rel.isEmpty ? e.name : "\(rel)/\(e.name)"
            if TemporaryName.isTemporary(e.name) { out.append(child) } else if e.isDirectory && e.name != Volume.configDirectoryName { out += litter(root, child) }
        }
        return out
    }

    @Test("regression: a crash in mkdir in an encrypted directory never leaves the new directory there unmarked")
    func mkdirNeverUnmarked() throws {
        // Found by the sweep below: the mount made the directory, then wrote its marker; a crash between left a plain
        // directory inside an encrypted one, and files copied into it later were stored in plaintext.
        let m = try MountedVolume()
        defer { m.unmount() }
        var n = 1
        while n < 50 {
            m.unmount()
            try? FileManager.default.removeItem(atPath: m.b("secret/newdir").string)
            for t in Self.litter(m.volume) { try? FileManager.default.removeItem(atPath: m.volume.appending(t).string) }
            m.daemonEnvironment = ["EFS_CRASH_AT": "any:\(n)"]
            try m.start()
            m.daemonEnvironment = [:]
            let made = (try? Sys.mkdir(m.m("secret/newdir"), mode: 0o755)) != nil
            if made {
                m.unmount()
                if m.exitStatus == 0 { break }
            } else {
                m.kill()
            }
            let dir = m.b("secret/newdir")
            #expect(!TestFiles.exists(dir) || m.alice.session.isEncryptedDirectory(dir), "crash point \(n): newdir is there but not encrypted")
            let repair = FileSystemCheck(session: nil, repair: true).check(m.volume)
            #expect(repair.isClean && Self.litter(m.volume).isEmpty, "crash point \(n): \(repair.problems)")
            n += 1
        }
        #expect(n > 3, "mkdir made at least a few calls")
    }

    @Test("regression: a crash in rmdir of, or a rename over, an empty encrypted directory never leaves it there unmarked", arguments: ["rmdir", "rename"])
    func removeNeverUnmarked(_ op: String) throws {
        // Found by review: an empty encrypted directory holds its marker, so rmdir and a rename over it moved the
        // marker out, then removed the directory; a crash between left it in view without its marker.
        let m = try MountedVolume()
        defer { m.unmount() }
        let content = TestFiles.bytes(70_000, seed: 40)
        try Sys.mkdir(m.m("secret/empty"), mode: 0o750)
        try Sys.mkdir(m.m("secret/src"), mode: 0o755)
        TestFiles.write(m.m("secret/src/f"), content)
        m.unmount()
        let saved = m.dir.appending("saved-\(op)")
        try #require(FUSE.run("/bin/cp", ["-a", m.volume.string, saved.string]) == 0)
        func act() -> Bool {
            op == "rmdir" ? (try? Sys.rmdir(m.m("secret/empty"))) != nil : (try? Sys.rename(m.m("secret/src"), m.m("secret/empty"))) != nil
        }
        var n = 1
        while n < 50 {
            try FileManager.default.removeItem(atPath: m.volume.string)
            try #require(FUSE.run("/bin/cp", ["-a", saved.string, m.volume.string]) == 0)
            m.daemonEnvironment = ["EFS_CRASH_AT": "any:\(n)"]
            try m.start()
            m.daemonEnvironment = [:]
            if act() {
                m.unmount()
                if m.exitStatus == 0 { break }
            } else {
                m.kill()
            }
            let here = "\(op) crash point \(n)"
            for dir in ["secret/empty", "secret/src"] where TestFiles.exists(m.b(dir)) {
                #expect(m.alice.session.isEncryptedDirectory(m.b(dir)), "\(here): \(dir) is there but not encrypted")
            }
            let repair = FileSystemCheck(session: m.alice.session, repair: true).check(m.volume)
            #expect(repair.isClean && Self.litter(m.volume).isEmpty, "\(here): \(repair.problems), left \(Self.litter(m.volume))")
            // The moved file is in exactly one place, whole; a directory still named empty is empty.
            try m.start()
            let places = ["secret/src/f", "secret/empty/f"].filter { TestFiles.exists(m.m($0)) }
            #expect(places.count == 1 && places.allSatisfy { (try? F.read(m.m($0))) == content }, "\(here): f is at \(places)")
            if op == "rmdir" || places == ["secret/src/f"], TestFiles.exists(m.m("secret/empty")) {
                #expect((try? Sys.listDirectory(m.m("secret/empty")))?.isEmpty == true, "\(here): empty is not empty")
            }
            m.unmount()
            n += 1
        }
        #expect(n > 3, "\(op) made at least a few calls")
    }

    @Test("every crash point of writes through the mount leaves each block of each file in a state it had, after a remount")
    func sweep() throws {
        let m = try MountedVolume()
        defer { m.unmount() }
        m.unmount()
        try Self.prepare(m)
        let backing = m.dir.appending("saved")
        try #require(FUSE.run("/bin/cp", ["-a", m.volume.string, backing.string]) == 0)
        func reset() throws {
            try FileManager.default.removeItem(atPath: m.volume.string)
            try #require(FUSE.run("/bin/cp", ["-a", backing.string, m.volume.string]) == 0)
        }
        // The whole sequence, uninterrupted, leads to its final state.
        try m.start()
        try #require(Self.run(m), "the uninterrupted sequence failed: \(m.log)")
        #expect(try F.read(m.m("secret/m.bin")) == Data.n1 && (try F.read(m.m("secret/a.bin"))) == Data.a1)
        m.unmount()
        var n = 1
        var points = 0
        while n < 2_000 {
            try reset()
            m.daemonEnvironment = ["EFS_CRASH_AT": "any:\(n)"]
            let came = (try? m.start()) != nil
            m.daemonEnvironment = [:]
            let completed = came && Self.run(m)
            if came { completed ? m.unmount() : m.kill() }
            if completed && m.exitStatus == 0 { break }
            points = n
            let here = "mount crash point \(n)"
            // Before the remount: litter, and interrupted overwrites (whose blocks may fail authentication until the
            // next open or --repair completes them), only.
            let early = FileSystemCheck(session: m.alice.session, repair: false).check(m.volume)
            let pending = Set(early.problems.filter { $0.kind == .interruptedWrite }.map(\.path))
            #expect(early.problems.allSatisfy { $0.kind == .litter || $0.kind == .interruptedWrite || ($0.kind == .authentication && pending.contains($0.path)) },
                    "\(here): fsck before the remount: \(early.problems)")
            // Every other point the check's repair goes first, else the remount's own recovery.
            if n % 2 == 1 {
                let repair = FileSystemCheck(session: m.alice.session, repair: true).check(m.volume)
                #expect(repair.isClean, "\(here): fsck --repair before the remount left \(repair.problems)")
            }
            try m.start()
            let found = Self.problems(m)
            #expect(found.isEmpty, "\(here): \(found.joined(separator: "\n"))")
            m.unmount()
            let temporaries = Set(Self.litter(m.volume).map { m.volume.appending($0).string })
            #expect(temporaries.allSatisfy { ($0.split(separator: "/").last ?? "").hasPrefix(".") }, "\(here): visible temporaries \(temporaries)")
            if n % 10 == 0 {
                let cli = CLIRunner(home: m.alice.store.root)
                let check = cli.run(["fsck", "--keys", m.volume.string])
                let named = Set(check.stdout.split(separator: "\n").dropLast().compactMap { $0.split(separator: ": ", maxSplits: 1).first.map(String.init) })
                #expect(check.status == (temporaries.isEmpty ? 0 : 31) && named == temporaries, "\(here): efs fsck: \(check.stdout)")
                #expect(cli.run(["fsck", "--repair", m.volume.string]).status == 0)
                #expect(cli.run(["fsck", "--keys", m.volume.string]).status == 0, "\(here): efs fsck after --repair")
            } else {
                let check = FileSystemCheck(session: m.alice.session, repair: false).check(m.volume)
                #expect(check.problems.allSatisfy { $0.kind == .litter } && Set(check.problems.map(\.path.string)) == temporaries, "\(here): fsck after the remount: \(check.problems)")
                let repair = FileSystemCheck(session: nil, repair: true).check(m.volume)
                #expect(repair.isClean && Set(repair.litterRemoved.map(\.string)) == temporaries, "\(here): fsck --repair: \(repair.problems), removed \(repair.litterRemoved)")
            }
            n += 1
        }
        print("crash points: writes through the mount \(points)")
        #expect(points >= 100)
    }
}
