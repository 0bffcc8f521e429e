// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFS
import EFSSystem
import EFSTestSupport
import Foundation
import SystemPackage
import Testing

/// Crash injection (issue 6): for each operation, ``CrashSweep``s stop the debug `efs` binary just before every one
/// of its writes, fsyncs, truncates and renames in turn (`EFS_CRASH_AT=any:N`), and after each crash check that
/// every object holds its old or its new state, that no temporary name is visible, and that `efs fsck` names exactly
/// the temporary litter and `--repair` removes exactly that. Each operation must reach at least 100 crash points, each
/// a distinct call of one run: the sum over one sweep per object of many (files of many shapes, marked directories)
/// plus a `-r` sweep of a small tree where the command recurses; for raw import and restore, one input large enough
/// (a stream of 100+ segments, an archive of many entries). Sweeping per object keeps each point's cost at one
/// object's work; one sweep over a tree of n objects would cost n² object operations.
@Suite("Crash safety", .enabled(if: FaultInjection.isAvailable))
struct CrashTests {
    /// The fewest crash points each operation must reach.
    static let minimumPoints = 100

    /// alice's keys, in this process, to read what the command left.
    static func session(_ w: World) -> EFSSession {
        EFSSession(keyStore: KeyStore(root: w.dir.appending("alice-home")), passphrase: nil)
    }

    /// Writes plain files below `root` (relative paths and sizes), creating directories as needed; `xattrs` gives
    /// some files `user.*` extended attributes (encryption seals them as named streams).
    static func writeTree(_ root: FilePath, _ files: [(String, Int)], xattrs: [String: Int] = [:]) throws {
        for (i, (name, size)) in files.enumerated() {
            let path = root.appending(name)
            try FileManager.default.createDirectory(atPath: path.removingLastComponent().string, withIntermediateDirectories: true)
            TestFiles.write(path, TestFiles.bytes(size, seed: UInt64(i) &+ 1_000))
            guard let count = xattrs[name] else { continue }
            let fd = try Sys.open(path, .readWrite)
            defer { Sys.close(fd) }
            for k in 0..<count { try Sys.setXattr(fd, "user.note\(k)", Array("note \(k) of \(name)".utf8)) }
        }
    }

    /// Runs several sweeps (one object each); returns each one's label and crash points.
    static func runAll(_ sweeps: [CrashSweep]) throws -> [(String, Int)] {
        try sweeps.map { ($0.label, try $0.run()) }
    }

    // MARK: - Encrypt and decrypt

    /// Files of sizes around the block (4096) and pipeline chunk (4 MiB) boundaries, most with extended attributes
    /// (sealed as named streams when encrypted): name, size, attributes.
    static let shapes: [(String, Int, Int)] = [
        ("empty", 0, 0), ("one", 1, 1), ("block", 4_096, 0), ("block+1", 4_097, 0), ("streams", 20_000, 6),
        ("two-chunks", 4 * 1_048_576 + 77, 2), ("b", 65_539, 2), ("d", 100_000, 3),
    ] + (0..<6).map { ("s\($0)", 100 + $0 * 700, 2) }

    /// One directory per shape (`objects/NAME/f`), a directory to mark (`objects/dir`), and a small tree for `-r`
    /// (`objects/tree`: a file, and a subdirectory with a file).
    static func writeObjects(_ root: FilePath) throws {
        for (name, size, x) in shapes { try writeTree(root.appending(name), [("f", size)], xattrs: x > 0 ? ["f": x] : [:]) }
        try FileManager.default.createDirectory(atPath: root.appending("dir").string, withIntermediateDirectories: true)
        try writeTree(root.appending("tree"), [("a", 5_000), ("sub/b", 1)], xattrs: ["sub/b": 1])
    }

    /// Per object rather than over one tree, so each point costs one object's work (a tree's sweep costs the square
    /// of its size); the `-r` sweep of a small tree adds the walk from one object to the next.
    static func objectSweeps(_ w: World, _ verb: String, _ root: FilePath, reset: @escaping () throws -> Void) -> [CrashSweep] {
        let session = session(w)
        var sweeps = shapes.map { shape in
            CrashSweep(label: "\(verb) \(shape.0)", runner: w.alice, args: [verb, root.appending(shape.0).appending("f").string],
                       root: root.appending(shape.0), session: session, reset: reset)
        }
        sweeps.append(CrashSweep(label: "\(verb) dir", runner: w.alice, args: [verb, root.appending("dir").string],
                                 root: root.appending("dir"), session: session, reset: reset))
        sweeps.append(CrashSweep(label: "\(verb) -r tree", runner: w.alice, args: [verb, "-r", root.appending("tree").string],
                                 root: root.appending("tree"), session: session, reset: reset))
        return sweeps
    }

    static func report(_ what: String, _ results: [(String, Int)]) -> Int {
        let sum = results.reduce(0) { $0 + $1.1 }
        print("crash points: \(what) \(sum) over \(results.count) sweeps: \(results.map { "\($0.0) \($0.1)" }.joined(separator: ", "))")
        return sum
    }

    @Test("encrypt: every crash point leaves each file old or new")
    func encrypt() throws {
        let w = try World()
        let objects = w.vault.appending("objects")
        try Self.writeObjects(objects)
        let plain = try SavedTree(objects, in: w.dir, as: "plain")
        let points = Self.report("encrypt", try Self.runAll(Self.objectSweeps(w, "encrypt", objects, reset: plain.restore)))
        #expect(points >= Self.minimumPoints)
    }

    @Test("decrypt: every crash point leaves each file old or new")
    func decrypt() throws {
        let w = try World()
        let objects = w.vault.appending("objects")
        try Self.writeObjects(objects)
        try #require(w.alice.run(["encrypt", "-r", objects.string]).status == 0)
        let encrypted = try SavedTree(objects, in: w.dir, as: "encrypted")
        let points = Self.report("decrypt", try Self.runAll(Self.objectSweeps(w, "decrypt", objects, reset: encrypted.restore)))
        #expect(points >= Self.minimumPoints)
    }

    // MARK: - Key lists

    /// Encrypted objects, each in a directory of its own (`keys/oNN`): files of a few sizes (`f`), one with named
    /// streams, and marked directories (the directory itself). The key-list operations touch only metadata (four
    /// calls an object when the new lists fit the slot), so their sweeps need many objects.
    static func keyListObjects(_ w: World) throws -> (root: FilePath, targets: [(dir: FilePath, target: FilePath)]) {
        let root = w.vault.appending("keys")
        var targets: [(FilePath, FilePath)] = []
        for k in 0..<22 {
            let dir = root.appending(String(format: "o%02d", k))
            try writeTree(dir, [("f", k * 1_500)], xattrs: k == 21 ? ["f": 8] : [:])
            targets.append((dir, dir.appending("f")))
        }
        for k in 22..<26 {
            let dir = root.appending(String(format: "o%02d", k))
            try FileManager.default.createDirectory(atPath: dir.string, withIntermediateDirectories: true)
            targets.append((dir, dir))
        }
        try #require(w.alice.run(["encrypt", "-r", root.string]).status == 0)
        return (root, targets)
    }

    /// A certificate file for each of `names` (each a key store of its own), to add as users.
    static func certificates(_ w: World, _ names: [String]) throws -> [FilePath] {
        try names.map { name in
            let user = try TestUser(name, in: w.dir)
            let path = w.dir.appending("\(name).der")
            TestFiles.write(path, user.certificate.der)
            return path
        }
    }

    @Test("users add and users remove: every crash point leaves each file's old or new key lists")
    func usersAddRemove() throws {
        let w = try World()
        let session = Self.session(w)
        let (root, targets) = try Self.keyListObjects(w)
        let bob = try Self.certificates(w, ["bob"])[0]
        let before = try SavedTree(root, in: w.dir, as: "keys-before")
        func sweeps(_ args: @escaping (FilePath) -> [String], _ what: String, _ on: [(dir: FilePath, target: FilePath)],
                    _ reset: @escaping () throws -> Void) -> [CrashSweep] {
            on.map { CrashSweep(label: "\(what) \($0.dir.lastComponent!)", runner: w.alice, args: args($0.target), root: $0.dir, session: session, reset: reset) }
        }
        // One user more: the new lists fit the inactive slot.
        var add = try Self.runAll(sweeps({ ["users", "add", $0.string, bob.string] }, "users add", targets, before.restore))
        // Sixteen more at once: the lists outgrow the slots and the file is rebuilt (data copied, named streams too).
        let many = try Self.certificates(w, (1...16).map { "user\($0)" })
        let rebuilt = try Self.runAll(sweeps({ ["users", "add", $0.string] + many.map(\.string) }, "users add ×16", [targets[21], targets[20], targets[25]], before.restore))
        #expect(rebuilt.allSatisfy { $0.1 > 4 }, "adding sixteen users rebuilds the file: \(rebuilt)")
        add += rebuilt
        for t in targets { try #require(w.alice.run(["users", "add", t.target.string, bob.string]).status == 0) }
        let withBob = try SavedTree(root, in: w.dir, as: "keys-with-bob")
        let bobThumbprint = try EFSCertificate(der: TestFiles.read(bob)).thumbprint.hex
        let absent = try TestUser("nobody", in: w.dir).certificate.thumbprint.hex  // ignored: not a user of the files
        let remove = try Self.runAll(sweeps({ ["users", "remove", $0.string, bobThumbprint, absent] }, "users remove", targets, withBob.restore))
        #expect(Self.report("users add", add) >= Self.minimumPoints)
        #expect(Self.report("users remove", remove) >= Self.minimumPoints)
    }

    @Test("rekey: every crash point leaves each file's old or new key lists")
    func rekey() throws {
        let w = try World()
        let session = Self.session(w)
        let (root, targets) = try Self.keyListObjects(w)
        // A new current key, and a second recovery agent in the policy: rekey moves alice's entries to the new key
        // and adds the agent to every file.
        try #require(w.alice.run(["key", "new", "--name", "alice2", "--no-passphrase"]).status == 0)
        let ra2 = try TestUser("ra2", in: w.dir, recoveryAgent: true)
        TestFiles.write(w.dir.appending("ra2.der"), ra2.certificate.der)
        try #require(w.alice.run(["policy", w.vault.string, "--add", w.dir.appending("ra2.der").string]).status == 0)
        let before = try SavedTree(root, in: w.dir, as: "keys-before")
        var sweeps = targets.map {
            CrashSweep(label: "rekey \($0.dir.lastComponent!)", runner: w.alice, args: ["rekey", $0.target.string], root: $0.dir,
                       session: session, reset: before.restore)
        }
        // And the walk: -r over four of them.
        sweeps.append(CrashSweep(label: "rekey -r", runner: w.alice, args: ["rekey", "-r", root.string], root: root, session: session, reset: {
            try before.restore()
            for e in try FileManager.default.contentsOfDirectory(atPath: root.string) where !["o00", "o01", "o21", "o22"].contains(e) {
                try FileManager.default.removeItem(atPath: root.appending(e).string)
            }
        }))
        #expect(Self.report("rekey", try Self.runAll(sweeps)) >= Self.minimumPoints)
    }

    // MARK: - Raw import

    @Test("raw import, to a new path and over an existing file: every crash point leaves the target old or new and the stream untouched")
    func rawImport() throws {
        let w = try World()
        let session = Self.session(w)
        // Streams of several shapes: empty, block edges, one and several 4 MiB write batches (data segments are
        // written 4 MiB at a time), named streams. Each import makes about ten calls, so the sweep runs over every
        // shape, to a new path and over an existing file.
        let shapes: [(String, Int, Int)] = [
            ("empty", 0, 0), ("one", 1, 0), ("block", 4_096, 0), ("block1", 4_097, 0), ("seg", 61_441, 0),
            ("k64", 65_537, 1), ("m1", 1_048_576, 0), ("m4", 4 * 1_048_576 + 1, 0), ("m6", 6 * 1_048_576 + 5, 3),
            ("m9", 9 * 1_048_576 + 3, 2), ("two", 2, 1), ("k8", 8_193, 0), ("m2", 2 * 1_048_576 - 1, 2), ("m5", 5 * 1_048_576, 0),
        ]
        try Self.writeTree(w.vault, shapes.map { ($0.0, $0.1) }, xattrs: Dictionary(uniqueKeysWithValues: shapes.filter { $0.2 > 0 }.map { ($0.0, $0.2) }))
        var streams: [(String, FilePath, [UInt8])] = []
        for (name, _, _) in shapes {
            try #require(w.alice.run(["encrypt", w.vault.appending(name).string]).status == 0)
            let stream = w.dir.appending("\(name).raw")
            try #require(w.alice.run(["raw", "export", w.vault.appending(name).string, "-o", stream.string]).status == 0)
            streams.append((name, stream, TestFiles.read(stream)))
        }
        let into = w.vault.appending("into")
        try Self.writeTree(into, [("old.bin", 300_000)])
        try #require(w.alice.run(["encrypt", into.appending("old.bin").string]).status == 0)
        let saved = try SavedTree(into, in: w.dir, as: "into")
        var points: [(String, Int)] = [("new.bin", 0), ("old.bin", 0)]
        for (k, target) in ["new.bin", "old.bin"].enumerated() {
            for (name, stream, bytes) in streams {
                var sweep = CrashSweep(label: "raw import \(name) → \(target)", runner: w.alice,
                                       args: ["raw", "import", stream.string, into.appending(target).string],
                                       root: into, session: session, reset: saved.restore)
                sweep.afterCrash = { n in
                    #expect(TestFiles.same(TestFiles.read(stream), bytes), "raw import \(name) crash point \(n): the stream changed")
                }
                points[k].1 += try sweep.run()
            }
        }
        print("crash points: raw import to a new path \(points[0].1), over an existing file \(points[1].1)")
        #expect(points.allSatisfy { $0.1 >= Self.minimumPoints }, "\(points)")
    }

    // MARK: - Restore

    @Test("regression: a crash in restore never leaves a new encrypted directory without its marker")
    func restoreNeverShowsAnUnmarkedDirectory() throws {
        // Restore used to create the directory, then import its marker from the next entry: a crash between the two
        // left a plain directory where an encrypted one belongs (files put into it later would be plaintext).
        let w = try World()
        let session = Self.session(w)
        try Self.writeTree(w.vault.appending("src/secret"), [("f", 10)])
        try #require(w.alice.run(["encrypt", "-r", w.vault.appending("src/secret").string]).status == 0)
        let archive = w.dir.appending("small.tar")
        try #require(w.alice.run(["backup", "src", "-C", w.vault.string, "-o", archive.string]).status == 0)
        let into = w.dir.appending("restored")
        var sweep = CrashSweep(label: "restore", runner: w.alice, args: ["restore", archive.string, "-C", into.string], root: into,
                               session: session, reset: { try? FileManager.default.removeItem(atPath: into.string) })
        sweep.afterCrash = { n in
            let secret = into.appending("src/secret")
            #expect(!TestFiles.exists(secret) || session.isEncryptedDirectory(secret), "crash point \(n): src/secret is there but not encrypted")
        }
        #expect(try sweep.run() >= 8)
    }

    @Test("restore: every crash point leaves each entry absent or whole, and a second restore completes it")
    func restore() throws {
        let w = try World()
        let session = Self.session(w)
        let src = w.vault.appending("src")
        // Encrypted files (several raw-stream segments each, one with named streams) in an encrypted directory,
        // plain files in a plain one, an empty directory, a symbolic link, and plain extended attributes.
        try Self.writeTree(src, [
            ("secret/a", 0), ("secret/b", 4_097), ("secret/c", 400_000), ("secret/d", 1_400_000), ("secret/e", 1),
            ("secret/deeper/f", 130_000), ("secret/deeper/g", 61_440 * 3), ("secret/streams", 30_000),
            ("secret/h0", 10), ("secret/h1", 4_096), ("secret/h2", 20_000), ("secret/h3", 70_000), ("secret/deeper/h4", 3),
            ("secret/h5", 9_000), ("secret/h6", 1_000),
            ("plain/p0", 0), ("plain/p1", 10), ("plain/p2", 100_000), ("plain/p3", 2_000_000), ("plain/x", 500),
        ], xattrs: ["secret/streams": 4, "plain/x": 2])
        try FileManager.default.createDirectory(atPath: src.appending("plain/empty").string, withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: src.appending("plain/link").string, withDestinationPath: "../secret/b")
        try #require(w.alice.run(["encrypt", "-r", src.appending("secret").string]).status == 0)
        // Modes other than the import's default and an old modification time, so that an entry whose content is in
        // place before its attributes shows (the mode in the tree state, the time in `afterCrash`).
        for (name, mode) in [("secret/b", 0o600), ("secret/c", 0o640), ("secret/deeper/f", 0o604), ("plain/p1", 0o600)] {
            try Sys.chmod(src.appending(name), UInt32(mode))
        }
        try Self.setAllTimes(src, Self.archivedTime)
        let archive = w.dir.appending("src.tar")
        try #require(w.alice.run(["backup", "src", "-C", w.vault.string, "-o", archive.string]).status == 0)
        let into = w.dir.appending("restored")
        let args = ["restore", archive.string, "-C", into.string]
        var sweep = CrashSweep(label: "restore", runner: w.alice, args: args, root: into, session: session, reset: {
            try? FileManager.default.removeItem(atPath: into.string)
        })
        sweep.rerun = true
        sweep.afterCrash = { n in Self.expectArchivedTimes(into, point: n) }
        let points = try sweep.run()
        let restored = TreeState.capture(into.appending("src"), session: session), original = TreeState.capture(src, session: session)
        #expect(restored.objects == original.objects, "the restored tree differs from the original: \(restored.problems(old: original, new: original))")
        print("crash points: restore \(points)")
        #expect(points >= Self.minimumPoints)
    }

    @Test("restore over an existing tree: every crash point leaves each object old or new, also where a directory or a link gives way to a file and a file to a link")
    func restoreOverExisting() throws {
        let w = try World()
        let session = Self.session(w)
        let src = w.vault.appending("src")
        try Self.writeTree(src, [("secret/a", 5_000), ("secret/b", 3_000), ("secret/deeper/f", 70_000), ("plain/p", 10), ("plain/q", 3_000), ("plain/d/x", 1)],
                           xattrs: ["plain/q": 1])
        try FileManager.default.createSymbolicLink(atPath: src.appending("plain/link").string, withDestinationPath: "p")
        try FileManager.default.createSymbolicLink(atPath: src.appending("plain/p2").string, withDestinationPath: "q")
        try #require(w.alice.run(["encrypt", "-r", src.appending("secret").string]).status == 0)
        try Sys.chmod(src.appending("secret/a"), 0o600)
        try Self.setAllTimes(src, Self.archivedTime)
        let archive = w.dir.appending("over.tar")
        try #require(w.alice.run(["backup", "src", "-C", w.vault.string, "-o", archive.string]).status == 0)
        // What the archive's entries land on: other content, a plain file where an encrypted one goes, files where
        // directories go, a file where a link goes, a link where a plain file and where an encrypted file goes.
        let into = w.dir.appending("over")
        try Self.writeTree(into.appending("src"), [("secret/a", 9), ("secret/deeper", 20), ("plain/p", 7_000), ("plain/d", 4), ("plain/link", 30), ("plain/keep", 2)])
        try FileManager.default.createSymbolicLink(atPath: into.appending("src/plain/q").string, withDestinationPath: "keep")
        try FileManager.default.createSymbolicLink(atPath: into.appending("src/secret/b").string, withDestinationPath: "a")
        let saved = try SavedTree(into, in: w.dir, as: "over-saved")
        var sweep = CrashSweep(label: "restore over", runner: w.alice, args: ["restore", archive.string, "-C", into.string], root: into,
                               session: session, reset: saved.restore)
        sweep.afterCrash = { n in Self.expectArchivedTimes(into, point: n, except: saved.copy) }
        let points = try sweep.run()
        print("crash points: restore over an existing tree \(points)")
        #expect(points >= 40)
    }

    /// The modification time the restore tests give every archived object (2001-09-09).
    static let archivedTime = 1_000_000_000

    /// Sets the access and modification times of everything below `root` (links themselves, not their targets).
    static func setAllTimes(_ root: FilePath, _ seconds: Int) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/find")
        p.arguments = [root.string, "-exec", "touch", "-h", "-d", "@\(seconds)", "{}", "+"]
        try p.run()
        p.waitUntilExit()
        try #require(p.terminationStatus == 0)
    }

    /// Every file and link below `root` not under a temporary name has the archived modification time, unless it
    /// is one the crash left untouched from `except` (the tree before the restore): an object whose content is in
    /// place before its times would show the time of the restore. Directory markers are skipped: the archive holds a
    /// directory's key lists in the directory's own entry, not the marker as a file, so a restored marker is new.
    static func expectArchivedTimes(_ root: FilePath, point n: Int, except before: FilePath? = nil) {
        guard let walk = FileManager.default.enumerator(atPath: root.string) else { return }
        for case let rel as String in walk where !TemporaryName.isTemporary(rel) && !rel.hasSuffix("/" + DirectoryMarker.name) {
            guard let st = try? Sys.lstat(root.appending(rel)), st.kind == .regular || st.kind == .symlink else { continue }
            if let before, let old = try? Sys.lstat(before.appending(rel)), old.modificationTime.tv_sec == st.modificationTime.tv_sec { continue }
            #expect(st.modificationTime.tv_sec == archivedTime, "crash point \(n): \(rel) is in place without its archived time")
        }
    }
}
