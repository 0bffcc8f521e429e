// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSSystem
import EFSTestSupport
import Foundation
import SystemPackage
import Testing

/// `efs windows …` over the frozen vectors of the independent Python generator.
@Suite("efs windows")
struct WindowsCLITests {
    static let names = WindowsVectors.vectorNames

    /// A key store-less runner and a directory with a password file for every key file.
    struct Setup {
        let dir = TemporaryDirectory()
        let efs: CLIRunner

        init() { efs = CLIRunner(home: dir.appending("home")) }

        func key(_ file: String) -> String { WindowsVectors.path(file).string }

        /// `--key FILE` and, when it has a password, `--passphrase-file`.
        func keyArgs(_ file: String, password: String? = nil) -> [String] {
            var args = ["--key", key(file)]
            if let pw = password ?? WindowsVectors.password(file) {
                args += ["--passphrase-file", dir.write("pw-\(UUID().uuidString)", Array("\(pw)\n".utf8)).string]
            }
            return args
        }

        func vector(_ name: String) -> String { WindowsVectors.path("vectors/\(name).robs").string }
    }

    static func expected(_ name: String, _ stream: String = "::$DATA") -> String? {
        let streams = WindowsVectors.vector(name)["streams"] as? [[String: Any]]
        return streams?.first { $0["name"] as? String == stream }?["plaintextSHA256"] as? String
    }

    @Test("decrypt: every vector with each listed key, to standard output; the key flavours in turn", arguments: names)
    func decryptVector(name: String) throws {
        let s = Setup()
        let v = WindowsVectors.vector(name)
        guard let expected = Self.expected(name) else { return }  // the directory vector has no data stream
        for (i, o) in (try #require(v["openWith"] as? [[String: Any]])).enumerated() {
            let id = try #require(o["keyId"] as? String)
            let flavour = WindowsVectors.flavours[(i + name.count) % WindowsVectors.flavours.count]
            let r = s.efs.run(["windows", "decrypt", s.vector(name)] + s.keyArgs(WindowsVectors.keyFile(id, flavour)))
            #expect(r.status == 0, "\(name) \(id) \(flavour): \(r.stderr)")
            #expect(WindowsVectors.sha256(r.stdoutBytes) == expected, "\(name) \(id) \(flavour)")
            // DES-based data: one warning line.
            let weak = r.stderr.split(separator: "\n").filter { $0.contains("weak encryption (3DES/DESX)") }
            #expect(weak.count == ((v["weak"] as? Bool) == true ? 1 : 0), "\(name): \(r.stderr)")
        }
    }

    @Test("decrypt -o: an atomic 0600 file with the named streams as user.* attributes; the ntfs-3g form")
    func decryptToFile() throws {
        let s = Setup()
        let out = s.dir.appending("plain")
        let r = s.efs.run(["windows", "decrypt", s.vector("aes256-v2-named-streams"), "-o", out.string] + s.keyArgs("keys/bob.modern.pfx"))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(WindowsVectors.sha256(TestFiles.read(out)) == Self.expected("aes256-v2-named-streams"))
        let st = try FileManager.default.attributesOfItem(atPath: out.string)
        #expect((st[.posixPermissions] as? Int) == 0o600)
        let names = try #require(try? Self.listXattrs(out))
        #expect(names.sorted() == ["user.Zone.Identifier", "user.secret"])
        // To standard output the named streams are skipped with a warning.
        let o = s.efs.run(["windows", "decrypt", s.vector("aes256-v2-named-streams")] + s.keyArgs("keys/alice.key.pem"))
        #expect(o.status == 0)
        #expect(o.stderr.contains("named stream 'secret' (700 bytes) skipped"))
        // ntfs-3g: efs_raw + $EFS, with a bare PEM key and its certificate.
        let n = s.efs.run([
            "windows", "decrypt", WindowsVectors.path("vectors/3des-v2-size513.efs_raw").string,
            "--efsinfo", WindowsVectors.path("vectors/3des-v2-size513.efs").string,
            "--cert", s.key("keys/carol.cert.pem"),
        ] + s.keyArgs("keys/carol.key.enc.pem"))
        #expect(n.status == 0, "\(n.stderr)")
        #expect(WindowsVectors.sha256(n.stdoutBytes) == Self.expected("3des-v2-size513"))
        #expect(!((try? FileManager.default.contentsOfDirectory(atPath: s.dir.path.string)) ?? []).contains { $0.contains(".efs-tmp-") })
    }

    static func listXattrs(_ p: FilePath) throws -> [String] {
        let fd = try Sys.open(p, .readOnly)
        defer { Sys.close(fd) }
        return try Sys.listXattrs(fd)
    }

    @Test("inspect: names, SIDs, grouped thumbprints, containers and providers, streams; no key needed")
    func inspect() throws {
        let s = Setup()
        let r = s.efs.run(["windows", "inspect", s.vector("aes256-v2-size511")])
        #expect(r.status == 0, "\(r.stderr)")
        let efs = try #require(WindowsVectors.vector("aes256-v2-size511")["efs"] as? [String: Any])
        for list in ["ddf", "drf"] {
            for x in try #require(efs[list] as? [[String: Any]]) {
                #expect(r.stdout.contains(try #require(x["displayName"] as? String)))
                let hex = try #require(x["thumbprint"] as? String).uppercased()
                let grouped = stride(from: 0, to: hex.count, by: 4).map { i in
                    String(hex.dropFirst(i).prefix(4))
                }.joined(separator: " ")
                #expect(r.stdout.contains("thumbprint: \(grouped)"))
                if let sid = x["sid"] as? String { #expect(r.stdout.contains("SID: \(sid)")) }
                if let c = x["containerName"] as? String { #expect(r.stdout.contains("container: \(c)")) }
                if let p = x["providerName"] as? String { #expect(r.stdout.contains("provider: \(p)")) }
            }
        }
        #expect(r.stdout.contains("EFS_Version 2"))
        #expect(r.stdout.contains("algorithm: unknown without a key"))
        #expect(r.stdout.contains("::$DATA  511 bytes"))
        // With a key: the algorithm, and which entry it opened.
        let k = s.efs.run(["windows", "inspect", s.vector("desx-v1-size511")] + s.keyArgs("keys/carol.legacy-3des.pfx"))
        #expect(k.status == 0, "\(k.stderr)")
        #expect(k.stdout.contains("algorithm: DESX (0x6604)  WEAK"))
        #expect(k.stdout.contains("(opened with the key)"))
        // JSON, and a bare $EFS.
        let j = s.efs.run(["windows", "inspect", "--json", WindowsVectors.path("vectors/aes256-v2-named-streams.efs").string])
        #expect(j.status == 0, "\(j.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any])
        #expect(o["form"] as? String == "efs")
        #expect(o["efsVersion"] as? Int == 2)
        #expect((o["ddf"] as? [[String: Any]])?.map { $0["thumbprint"] as? String } == (efsEntries("aes256-v2-named-streams", "ddf")))
        #expect(o["algorithm"] is NSNull)
        #expect(o["streams"] == nil)
        let js = s.efs.run(["windows", "inspect", "--json", s.vector("aes256-v2-named-streams")])
        let so = try #require(try JSONSerialization.jsonObject(with: Data(js.stdout.utf8)) as? [String: Any])
        #expect((so["streams"] as? [[String: Any]])?.map { $0["name"] as? String } == ["::$DATA", "secret", "Zone.Identifier"])
        #expect((so["streams"] as? [[String: Any]])?.map { $0["size"] as? Int } == [1000, 700, 26])
    }

    func efsEntries(_ name: String, _ list: String) -> [String?] {
        (((WindowsVectors.vector(name)["efs"] as? [String: Any])?[list] as? [[String: Any]]) ?? []).map {
            ($0["thumbprint"] as? String)?.uppercased()
        }
    }

    @Test("errors: one line, a documented exit status")
    func errors() throws {
        let s = Setup()
        func run(_ args: [String]) -> CLIRunner.Result { s.efs.run(["windows"] + args) }
        // A wrong PKCS#12 password: 18.
        let wrong = run(["decrypt", s.vector("aes256-v2-size511")] + s.keyArgs("keys/alice.legacy-rc2.pfx", password: "not the password"))
        #expect(wrong.status == 18)
        #expect(wrong.stderr.contains("wrong password for"))
        #expect(wrong.stderr.split(separator: "\n").count == 1)
        // No password and no terminal: 18 too.
        // (setsid: no controlling terminal even when the tests run from one, so nothing can prompt.)
        let none = s.efs.runWrapped(["/usr/bin/setsid", "-w", s.efs.binary, "windows", "decrypt", s.vector("aes256-v2-size511"), "--key", s.key("keys/alice.modern.pfx")])
        #expect(none.status == 18, "\(none.stderr)")
        #expect(none.stderr.contains("needs a password and no terminal is attached"))
        // A key that matches no entry: 16, listing the entries.
        let nomatch = run(["decrypt", s.vector("aes256-v2-size512")] + s.keyArgs("keys/dra1.modern.pfx"))
        #expect(nomatch.status == 16)
        #expect(nomatch.stderr.contains("matches no DDF or DRF entry"))
        #expect(nomatch.stderr.contains("alice(alice@WIN10-VECTOR) (E3E8 01B3 595B BA9D 5BB6 98A3 FF6D C4F7 5375 58C2)"))
        // Matches by thumbprint but does not decrypt: 19.
        let other = run(["decrypt", WindowsVectors.path("malformed/key-efek-for-another-key.robs").string] + s.keyArgs("keys/alice.modern.pfx"))
        #expect(other.status == 19, "\(other.stderr)")
        // Malformed $EFS: 20, naming the problem.
        let gap = run(["inspect", WindowsVectors.path("malformed/efs-gap-12-bytes.efs").string])
        #expect(gap.status == 20)
        #expect(gap.stderr.contains("malformed $EFS: an unused gap of 12 bytes"))
        // Metadata v2: 21, "not supported yet".
        let v2 = run(["inspect", WindowsVectors.path("malformed/efs-version-4-metadata-v2.efs").string])
        #expect(v2.status == 21)
        #expect(v2.stderr.contains("metadata version 2 (EFS_Version 4, EFSX protectors) is not supported yet"))
        // An unknown data algorithm: 26, "not supported yet".
        let alg = run(["decrypt", WindowsVectors.path("malformed/key-fek-unknown-algorithm.robs").string] + s.keyArgs("keys/alice.modern.pfx"))
        #expect(alg.status == 26)
        #expect(alg.stderr.contains("not supported yet"))
        // A malformed raw stream or efs_raw: 28.
        let robs = run(["inspect", WindowsVectors.path("malformed/robs-misaligned-offset.robs").string])
        #expect(robs.status == 28)
        #expect(robs.stderr.contains("StartingFileOffset 100"))
        let raw = run([
            "decrypt", WindowsVectors.path("malformed/efsraw-pad-512.efs_raw").string, "--efsinfo",
            WindowsVectors.path("vectors/aes256-v2-size511.efs").string,
        ] + s.keyArgs("keys/alice.key.pem"))
        #expect(raw.status == 28)
        #expect(raw.stderr.contains("pad length 512"))
        // A bare $EFS cannot be decrypted: 27.
        let bare = run(["decrypt", WindowsVectors.path("vectors/aes256-v2-size511.efs").string] + s.keyArgs("keys/alice.key.pem"))
        #expect(bare.status == 27)
    }

    /// Alice's key store with the frozen alice key (current), bob's and dra1's certificates, and a volume whose
    /// recovery agent is a new RSA agent.
    struct World {
        let s = Setup()
        let alice: CLIRunner
        let agent: CLIRunner
        let vault: FilePath

        init() throws {
            let s = self.s
            let alice = s.efs
            let k = ["keys/alice.cert.pem", "keys/alice.key.pem", "keys/bob.cert.pem", "keys/dra1.cert.pem"]
            let i = alice.run(["key", "import"] + k.map { s.key($0) } + ["--no-passphrase"])
            try #require(i.status == 0, "\(i.stderr)")
            try #require(alice.run(["key", "use", "E3E801B3595BBA9D5BB698A3FF6DC4F7537558C2"]).status == 0)
            let agent = CLIRunner(home: s.dir.appending("agent-home"))
            let r = agent.run(["key", "new", "--name", "ra", "--recovery-agent", "--rsa", "2048", "--no-passphrase"])
            try #require(r.status == 0, "\(r.stderr)")
            let tp = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            try #require(agent.run(["key", "export", tp, "--cert", "-o", s.dir.appending("ra.pem").string]).status == 0)
            let vault = s.dir.appending("vault")
            try FileManager.default.createDirectory(atPath: vault.string, withIntermediateDirectories: false)
            try #require(alice.run(["init", vault.string, "--recovery-agent", s.dir.appending("ra.pem").string]).status == 0)
            self.alice = alice
            self.agent = agent
            self.vault = vault
        }
    }

    @Test("import, then efs cat; the recovery agent reads it, a stranger cannot")
    func importThenCat() throws {
        let w = try World()
        let path = w.vault.appending("report").string
        let r = w.alice.run(["windows", "import", w.s.vector("aes256-v2-size511"), path] + w.s.keyArgs("keys/alice.legacy-3des.pfx"))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("user: alice  E3E8 01B3"))
        #expect(r.stdout.contains("user: bob  4F48 96BC"))
        #expect(r.stdout.contains("recovery agent: Administrator  7CAE 48B8"))
        #expect(r.stdout.contains("recovery agent: ra  "))
        #expect(r.stderr.contains("skipped user carol(carol@W2K-OLD)"))
        #expect(r.stderr.contains("skipped recovery agent EFS Recovery Agent 2(recovery@CORP.EXAMPLE)"))
        let expected = Self.expected("aes256-v2-size511")
        #expect(WindowsVectors.sha256(w.alice.run(["cat", path]).stdoutBytes) == expected)
        #expect(WindowsVectors.sha256(w.agent.run(["cat", path]).stdoutBytes) == expected)
        let stranger = CLIRunner(home: w.s.dir.appending("eve-home"))
        #expect(stranger.run(["key", "new", "--name", "eve", "--no-passphrase"]).status == 0)
        #expect(stranger.run(["cat", path]).status == 16)
        // Importing over an existing file: 23, and nothing changes.
        let again = w.alice.run(["windows", "import", w.s.vector("aes256-v2-size512"), path] + w.s.keyArgs("keys/alice.key.pem"))
        #expect(again.status == 23)
        #expect(WindowsVectors.sha256(w.alice.run(["cat", path]).stdoutBytes) == expected)
    }

    @Test("export: the independent checker accepts the stream (--strict), and efs windows decrypt reads it back")
    func export() throws {
        let w = try World()
        let path = w.vault.appending("doc").string
        let name = "aes256-v2-size65537"
        #expect(w.alice.run(["windows", "import", w.s.vector(name), path] + w.s.keyArgs("keys/alice.key.pem")).status == 0)
        let out = w.s.dir.appending("doc.robs").string
        let e = w.alice.run(["windows", "export", path, "-o", out])
        #expect(e.status == 0, "\(e.stderr)")
        let expected = Self.expected(name)
        for key in ["keys/alice.modern.pfx", "keys/bob.key.pem", "keys/dra1.legacy-rc2.pfx"] {
            let d = w.alice.run(["windows", "decrypt", out] + w.s.keyArgs(key))
            #expect(d.status == 0, "\(key): \(d.stderr)")
            #expect(WindowsVectors.sha256(d.stdoutBytes) == expected, "\(key)")
        }
        // --key: someone whose key store has no key for the file exports with bob's key from a file.
        let stranger = CLIRunner(home: w.s.dir.appending("stranger-home"))
        let byKey = w.s.dir.appending("by-key.robs").string
        #expect(stranger.run(["windows", "export", path, "-o", byKey]).status != 0, "without --key the stranger has no key")
        let k = stranger.run(["windows", "export", path, "-o", byKey, "--key", w.s.key("keys/bob.key.pem"), "--cert", w.s.key("keys/bob.cert.pem")])
        #expect(k.status == 0, "\(k.stderr)")
        #expect(WindowsVectors.sha256(w.alice.run(["windows", "decrypt", byKey] + w.s.keyArgs("keys/alice.modern.pfx")).stdoutBytes) == expected)
        let noCert = stranger.run(["windows", "export", path, "-o", byKey, "--key", w.s.key("keys/bob.key.pem")])
        #expect(noCert.status != 0 && noCert.stderr.contains("--cert"), "a bare key needs its certificate: \(noCert.stderr)")
        // The ntfs-3g pair.
        let raw = w.s.dir.appending("doc.efs_raw").string, info = w.s.dir.appending("doc.efs").string
        #expect(w.alice.run(["windows", "export", path, "-o", raw, "--ntfs3g", info]).status == 0)
        let n = w.alice.run(["windows", "decrypt", raw, "--efsinfo", info] + w.s.keyArgs("keys/alice.modern.pfx"))
        #expect(WindowsVectors.sha256(n.stdoutBytes) == expected)
        guard WindowsVectors.hasPythonChecker else {
            print("skipping the check-windows-stream.py run: python3 with the cryptography module is not installed")
            return
        }
        let pw = w.s.dir.write("pw", Array((WindowsVectors.password("keys/alice.modern.pfx") ?? "").utf8))
        let c = WindowsVectors.runChecker([out, "--key", w.s.key("keys/alice.modern.pfx"), "--password-file", pw.string, "--strict"])
        #expect(c.status == 0, "\(c.output)")
        #expect(c.output.contains(expected ?? "?"))
        let c2 = WindowsVectors.runChecker([raw, "--efsinfo", info, "--key", w.s.key("keys/bob.key.pem"), "--strict"])
        #expect(c2.status == 0, "\(c2.output)")
        #expect(c2.output.contains(expected ?? "?"))
    }
}
