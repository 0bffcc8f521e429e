// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSSystem
import EFSTestSupport
import Foundation
import SystemPackage
import Testing

/// A throw-away world: alice's key store, a recovery agent, a volume.
struct World {
    let dir = TemporaryDirectory()
    let alice: CLIRunner
    let agent: CLIRunner
    let agentThumbprint: String
    let aliceThumbprint: String
    let vault: FilePath

    init(passphrase: Bool = false) throws {
        alice = CLIRunner(home: dir.appending("alice-home"))
        agent = CLIRunner(home: dir.appending("agent-home"))
        let pw = dir.write("pw", Array("correct horse battery\n".utf8))
        let a = passphrase
            ? alice.run(["key", "new", "--name", "alice", "--passphrase-file", pw.string])
            : alice.run(["key", "new", "--name", "alice", "--no-passphrase"])
        try #require(a.status == 0, "\(a.stderr)")
        aliceThumbprint = a.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let r = agent.run(["key", "new", "--name", "ra", "--recovery-agent", "--no-passphrase"])
        try #require(r.status == 0, "\(r.stderr)")
        agentThumbprint = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(agent.run(["key", "export", agentThumbprint, "--cert", "-o", dir.appending("ra.pem").string]).status == 0)
        vault = dir.appending("vault")
        try FileManager.default.createDirectory(atPath: vault.string, withIntermediateDirectories: false)
        let i = alice.run(["init", vault.string, "--recovery-agent", dir.appending("ra.pem").string])
        try #require(i.status == 0, "\(i.stderr)")
    }

    func path(_ name: String) -> String { vault.appending(name).string }
}

@Suite("efs command line")
struct CLITests {
    @Test("the issue's user story, end to end")
    func userStory() throws {
        let w = try World()
        let a = w.alice
        TestFiles.write(FilePath(w.path("report.pdf")), Array("%PDF quarterly report".utf8))
        #expect(a.run(["encrypt", w.path("report.pdf")]).status == 0)
        #expect(!String(decoding: TestFiles.read(FilePath(w.path("report.pdf"))), as: UTF8.self).contains("quarterly"))
        try FileManager.default.createDirectory(atPath: w.path("projects"), withIntermediateDirectories: false)
        #expect(a.run(["encrypt", w.path("projects")]).status == 0)
        #expect(a.run(["status", w.path("report.pdf")]).stdout.contains("encrypted"))
        let status = a.run(["status", "--json", w.path("report.pdf"), w.path("projects"), w.vault.string])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [[String: Any]])
        #expect(rows.map { $0["status"] as? String } == ["FILE_IS_ENCRYPTED", "FILE_IS_ENCRYPTED", "FILE_ROOT_DIR"])
        #expect(a.run(["cat", w.path("report.pdf")]).stdout == "%PDF quarterly report")
        #expect(w.agent.run(["cat", w.path("report.pdf")]).stdout == "%PDF quarterly report")
        let users = a.run(["users", w.path("report.pdf")])
        #expect(users.stdout.contains("alice"))
        #expect(users.stdout.contains(w.agentThumbprint))
        // Bob gets access, then loses it.
        let bob = CLIRunner(home: w.dir.appending("bob-home"))
        let b = bob.run(["key", "new", "--name", "bob", "--no-passphrase", "--rsa", "2048"])
        try #require(b.status == 0)
        let bobTP = b.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(bob.run(["key", "export", bobTP, "--cert", "-o", w.dir.appending("bob.pem").string]).status == 0)
        let noKey = bob.run(["cat", w.path("report.pdf")])
        #expect(noKey.status == 16)
        #expect(noKey.stderr.contains("no key in your key store can open"))
        #expect(noKey.stderr.contains("alice (\(w.aliceThumbprint))"))
        #expect(a.run(["users", "add", w.path("report.pdf"), w.dir.appending("bob.pem").string]).status == 0)
        #expect(bob.run(["cat", w.path("report.pdf")]).stdout == "%PDF quarterly report")
        let json = a.run(["users", "--json", w.path("report.pdf")])
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect((parsed[0]["users"] as? [[String: Any]])?.count == 2)
        #expect(a.run(["users", "remove", w.path("report.pdf"), String(bobTP.replacingOccurrences(of: " ", with: "").prefix(10)).lowercased()]).status == 0)
        #expect(bob.run(["cat", w.path("report.pdf")]).status == 16)
        // A new key, then rekey.
        let k2 = a.run(["key", "new", "--name", "alice-2024", "--no-passphrase"])
        try #require(k2.status == 0)
        #expect(a.run(["key", "use", w.aliceThumbprint]).status == 0)
        #expect(a.run(["key", "use", k2.stdout.trimmingCharacters(in: .whitespacesAndNewlines)]).status == 0)
        let rk = a.run(["rekey", "-r", w.vault.string])
        #expect(rk.status == 0)
        #expect(rk.stdout.contains("2 updated"))
        #expect(a.run(["users", w.path("report.pdf")]).stdout.contains("alice-2024"))
        #expect(a.run(["decrypt", w.path("report.pdf")]).status == 0)
        #expect(String(decoding: TestFiles.read(FilePath(w.path("report.pdf"))), as: UTF8.self) == "%PDF quarterly report")
        try FileManager.default.createDirectory(atPath: w.path("public"), withIntermediateDirectories: false)
        #expect(a.run(["disable", w.path("public")]).status == 0)
        TestFiles.write(FilePath(w.path("public/x")), [1])
        let refused = a.run(["encrypt", w.path("public/x")])
        #expect(refused.status == 15)
        #expect(refused.stderr.contains("disabled"))
    }

    @Test("recursive encrypt and decrypt of a tree")
    func recursive() throws {
        let w = try World()
        try FileManager.default.createDirectory(atPath: w.path("t/a/b"), withIntermediateDirectories: true)
        for (i, name) in ["t/1", "t/a/2", "t/a/b/3"].enumerated() { TestFiles.write(FilePath(w.path(name)), TestFiles.bytes(5000 * (i + 1), seed: UInt64(i))) }
        #expect(w.alice.run(["encrypt", "-r", w.path("t")]).status == 0)
        let st = w.alice.run(["status", "-r", "--json", w.path("t")])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(st.stdout.utf8)) as? [[String: Any]])
        #expect(rows.count == 6)
        #expect(rows.allSatisfy { $0["status"] as? String == "FILE_IS_ENCRYPTED" })
        #expect(w.alice.run(["decrypt", "-r", w.path("t")]).status == 0)
        #expect(TestFiles.read(FilePath(w.path("t/a/b/3"))) == TestFiles.bytes(15000, seed: 2))
    }

    @Test("passphrases: from a file, from standard input, and refused when missing")
    func passphrases() throws {
        let w = try World(passphrase: true)
        let a = w.alice
        TestFiles.write(FilePath(w.path("p.txt")), Array("pass".utf8))
        let pw = w.dir.appending("pw").string
        // No terminal and no passphrase file: a clear error, exit 18.
        let none = a.run(["encrypt", w.path("p.txt")])
        #expect(none.status == 0)  // encrypting needs only the public key
        let noPass = a.run(["cat", w.path("p.txt")])
        #expect(noPass.status == 18)
        #expect(noPass.stderr.contains("--passphrase-file"))
        #expect(a.run(["cat", "--passphrase-file", pw, w.path("p.txt")]).stdout == "pass")
        #expect(a.run(["cat", w.path("p.txt")], env: ["EFS_PASSPHRASE_FILE": pw]).stdout == "pass")
        #expect(a.run(["cat", "--passphrase-file", "-", w.path("p.txt")], stdin: Array("correct horse battery\n".utf8)).stdout == "pass")
        let wrong = a.run(["cat", "--passphrase-file", "-", w.path("p.txt")], stdin: Array("nope\n".utf8))
        #expect(wrong.status == 18)
        #expect(wrong.stderr.contains("wrong passphrase"))
        // openssl reads the key file with the same passphrase.
        let keys = try FileManager.default.contentsOfDirectory(atPath: w.dir.appending("alice-home/keys").string)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        p.arguments = ["pkey", "-in", w.dir.appending("alice-home/keys/\(keys[0])").string, "-passin", "file:\(pw)", "-noout"]
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
    }

    @Test("errors have one line on stderr and a numbered exit status")
    func errors() throws {
        let w = try World()
        let a = w.alice
        let missing = a.run(["cat", w.path("missing")])
        #expect(missing.status == 10)
        #expect(missing.stderr.split(separator: "\n").count == 1)
        TestFiles.write(FilePath(w.path("plain.txt")), [1])
        #expect(a.run(["cat", w.path("plain.txt")]).status == 13)
        let outside = w.dir.write("outside.txt", [1])
        #expect(a.run(["encrypt", outside.string]).status == 22)
        #expect(a.run(["users", w.path("plain.txt")]).status == 13)
        #expect(a.run(["key", "use", "12"]).status == 27)
        #expect(a.run(["key", "use", "0000000000"]).status == 10)
        #expect(a.run(["key", "new", "--rsa", "1024", "--no-passphrase"]).status == 64)
        #expect(a.run(["init", w.vault.string]).status == 23)
        TestFiles.write(FilePath(w.path("t.bin")), TestFiles.bytes(10_000, seed: 1))
        #expect(a.run(["encrypt", w.path("t.bin")]).status == 0)
        TestFiles.flipBit(FilePath(w.path("t.bin")), at: TestFiles.read(FilePath(w.path("t.bin"))).count - 100)
        let tampered = a.run(["cat", w.path("t.bin")])
        #expect(tampered.status == 19)
        #expect(tampered.stderr.contains("authentication failed"))
        let empty = CLIRunner(home: w.dir.appending("empty-home"))
        TestFiles.write(FilePath(w.path("e.txt")), [1])
        let nk = empty.run(["encrypt", w.path("e.txt")])
        #expect(nk.status == 17)
        #expect(nk.stderr.contains("efs key new"))
        // Several paths: the good ones are done, the status is the failure's.
        TestFiles.write(FilePath(w.path("ok.txt")), [2])
        let mixed = a.run(["encrypt", w.path("missing"), w.path("ok.txt")])
        #expect(mixed.status == 10)
        #expect(a.run(["status", w.path("ok.txt")]).stdout.contains(": encrypted"))
    }

    @Test("key list, export and import round-trip through PEM files")
    func keys() throws {
        let w = try World()
        let list = w.alice.run(["key", "list", "--json"])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])
        #expect(rows.count == 1)
        #expect(rows[0]["current"] as? Bool == true)
        let pw = w.dir.appending("pw").string
        let exported = w.dir.appending("alice-key.pem").string
        #expect(w.alice.run(["key", "export", w.aliceThumbprint, "--private", "-o", exported, "--passphrase-file", pw]).status == 0)
        #expect(String(decoding: TestFiles.read(FilePath(exported)), as: UTF8.self).contains("ENCRYPTED PRIVATE KEY"))
        let attrs = try FileManager.default.attributesOfItem(atPath: exported)
        #expect((attrs[.posixPermissions] as? Int) == 0o600)
        let cert = w.dir.appending("alice-cert.pem").string
        #expect(w.alice.run(["key", "export", w.aliceThumbprint.lowercased(), "--cert", "-o", cert]).status == 0)
        let other = CLIRunner(home: w.dir.appending("laptop-home"))
        let imp = other.run(["key", "import", cert, exported, "--passphrase-file", pw])
        #expect(imp.status == 0, "\(imp.stderr)")
        #expect(imp.stdout.contains("with private key"))
        TestFiles.write(FilePath(w.path("f")), Array("moved key".utf8))
        #expect(w.alice.run(["encrypt", w.path("f")]).status == 0)
        #expect(other.run(["cat", "--passphrase-file", pw, w.path("f")]).stdout == "moved key")
    }
}

@Suite("efs command line regressions")
struct CLIRegressionTests {
    @Test("encrypt -r on a volume root encrypts what is inside and skips symlinks")
    func recursiveFromRoot() throws {
        let w = try World()
        TestFiles.write(FilePath(w.path("a.txt")), [1])
        try FileManager.default.createDirectory(atPath: w.path("sub"), withIntermediateDirectories: false)
        TestFiles.write(FilePath(w.path("sub/b.txt")), [2])
        try FileManager.default.createSymbolicLink(atPath: w.path("link"), withDestinationPath: "/etc/hostname")
        let r = w.alice.run(["encrypt", "-r", w.vault.string])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(w.alice.run(["status", w.path("a.txt")]).stdout.contains(": encrypted"))
        #expect(w.alice.run(["status", w.path("sub/b.txt")]).stdout.contains(": encrypted"))
        #expect(w.alice.run(["status", w.path("sub")]).stdout.contains(": encrypted"))
    }

    @Test("encrypt and decrypt finish where renaming over the open original fails with EBUSY (SMB share modes)",
          .enabled(if: FaultInjection.isAvailable, "needs the fault seam of a debug build"))
    func renameOverOpenFileRefused() throws {
        let w = try World()
        let bytes = TestFiles.bytes(70_001, seed: 5)
        TestFiles.write(FilePath(w.path("f.bin")), bytes)
        // Without the fallback the first rename's EBUSY is the command's error, and the file stays as it was.
        var r = w.alice.run(["encrypt", w.path("f.bin")], env: ["EFS_CRASH_AT": "busy:1"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(w.alice.run(["status", w.path("f.bin")]).stdout.contains(": encrypted"))
        #expect(TestFiles.same(w.alice.run(["cat", w.path("f.bin")]).stdoutBytes, bytes))
        #expect(try FileManager.default.contentsOfDirectory(atPath: w.vault.string).filter { $0.contains(".efs-tmp-") }.isEmpty)
        r = w.alice.run(["decrypt", w.path("f.bin")], env: ["EFS_CRASH_AT": "busy:1"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(TestFiles.same(TestFiles.read(FilePath(w.path("f.bin"))), bytes))
    }

    @Test("an empty passphrase file is refused when protecting a new key")
    func emptyPassphrase() throws {
        let dir = TemporaryDirectory()
        let empty = dir.write("empty", [])
        let r = CLIRunner(home: dir.appending("h")).run(["key", "new", "--passphrase-file", empty.string])
        #expect(r.status == 18)
        #expect(r.stderr.contains("empty passphrase"))
    }
}

@Suite("efs fsck")
struct FsckTests {
    @Test("fsck finds structural damage without keys, bad blocks with keys, and repairs only litter")
    func fsck() throws {
        let w = try World()
        TestFiles.write(FilePath(w.path("good.bin")), TestFiles.bytes(50_000, seed: 1))
        TestFiles.write(FilePath(w.path("bad.bin")), TestFiles.bytes(50_000, seed: 2))
        TestFiles.write(FilePath(w.path("header.bin")), TestFiles.bytes(100, seed: 3))
        TestFiles.write(FilePath(w.path("plain.txt")), Array("plain".utf8))
        #expect(w.alice.run(["encrypt", w.path("good.bin"), w.path("bad.bin"), w.path("header.bin")]).status == 0)
        #expect(w.alice.run(["fsck", "--keys", w.vault.string]).status == 0)
        let bad = TestFiles.read(FilePath(w.path("bad.bin")))
        TestFiles.flipBit(FilePath(w.path("bad.bin")), at: bad.count - 4124 * 3 + 100)  // a block in the middle
        TestFiles.flipBit(FilePath(w.path("header.bin")), at: 20)
        TestFiles.write(FilePath(w.path(".x.efs-tmp-abc")), [1])
        let noKeys = w.alice.run(["fsck", w.vault.string])
        #expect(noKeys.status == 31)
        #expect(noKeys.stdout.contains("header.bin"))
        #expect(!noKeys.stdout.contains("bad.bin"))  // its structure is fine; only a key finds the bad block
        #expect(noKeys.stdout.contains(".x.efs-tmp-abc"))
        let withKeys = w.alice.run(["fsck", "--keys", w.vault.string])
        #expect(withKeys.status == 31)
        #expect(withKeys.stdout.contains("bad.bin: authentication failed in bytes 36864..<40960"), "\(withKeys.stdout)")
        #expect(!withKeys.stdout.contains("good.bin"))
        let repaired = w.alice.run(["fsck", "--repair", w.vault.string])
        #expect(repaired.stdout.contains("removed"))
        #expect(!TestFiles.exists(FilePath(w.path(".x.efs-tmp-abc"))))
        #expect(TestFiles.exists(FilePath(w.path("bad.bin"))) && TestFiles.exists(FilePath(w.path("header.bin"))))
    }
}

@Suite("efs permissions as an unprivileged user")
struct PermissionTests {
    /// Runs efs as uid/gid 65534 (nobody) in a child process, the way the issue allows uid changes in tests.
    func asNobody(_ w: World, _ args: [String]) -> CLIRunner.Result {
        var r = CLIRunner(home: w.dir.appending("nobody-home"))
        r.environment["HOME"] = w.dir.appending("nobody-home").string
        return r.runWrapped(["/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", r.binary] + args)
    }

    @Test("export needs read access; import needs write access to the directory; no key is needed", .enabled(if: geteuid() == 0))
    func rawPermissions() throws {
        let w = try World()
        TestFiles.write(FilePath(w.path("secret.bin")), TestFiles.bytes(10_000, seed: 1))
        #expect(w.alice.run(["encrypt", w.path("secret.bin")]).status == 0)
        // The tree is world-traversable; the file is 0600 root: nobody cannot export it.
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: w.dir.path.string)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: w.vault.string)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: w.path("secret.bin"))
        let out = w.dir.appending("out")
        try FileManager.default.createDirectory(atPath: out.string, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o777])
        let denied = asNobody(w, ["raw", "export", w.path("secret.bin"), "-o", out.appending("s.raw").string])
        #expect(denied.status == 11, "\(denied.stderr)")
        // Readable (0644) → nobody exports it with no key at all.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: w.path("secret.bin"))
        let ok = asNobody(w, ["raw", "export", w.path("secret.bin"), "-o", out.appending("s.raw").string])
        #expect(ok.status == 0, "\(ok.stderr)")
        // Import into a directory nobody cannot write is refused; into their own directory it works.
        let refused = asNobody(w, ["raw", "import", out.appending("s.raw").string, w.path("copy.bin")])
        #expect(refused.status == 11, "\(refused.stderr)")
        let own = asNobody(w, ["raw", "import", out.appending("s.raw").string, out.appending("copy.bin").string])
        #expect(own.status == 0, "\(own.stderr)")
        #expect(w.alice.run(["cat", out.appending("copy.bin").string]).stdoutBytes == TestFiles.bytes(10_000, seed: 1))
    }
}
