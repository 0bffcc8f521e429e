// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSTestSupport
import Foundation
import SystemPackage
import Testing

@Suite("efs backup, verify and restore on the command line")
struct BackupCLITests {
    @Test("backup to a file and to standard output, verify, restore from a file and from standard input")
    func roundTrip() throws {
        let w = try World()
        let a = w.alice
        TestFiles.write(FilePath(w.path("secret.txt")), Array("the secret plan".utf8))
        TestFiles.write(FilePath(w.path("plain.txt")), Array("public".utf8))
        #expect(a.run(["encrypt", w.path("secret.txt")]).status == 0)
        let archive = w.dir.appending("vault.tar").string
        let b = a.run(["backup", "vault", "-C", w.dir.path.string, "-o", archive])
        #expect(b.status == 0, "\(b.stderr)")
        #expect(b.stderr.isEmpty, "quiet without a terminal")
        #expect(!TestFiles.exists(FilePath(archive + ".partial")))
        let v = a.run(["verify", archive])
        #expect(v.status == 0, "\(v.stderr)")
        #expect(v.stdout.contains("ok: "))
        #expect(v.stdout.contains("1 encrypted"))
        let r = w.agent.run(["restore", archive, "-C", w.dir.appending("restored").string])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(a.run(["cat", w.dir.appending("restored/vault/secret.txt").string]).stdout == "the secret plan")
        #expect(w.agent.run(["cat", w.dir.appending("restored/vault/secret.txt").string]).stdout == "the secret plan")
        #expect(TestFiles.read(w.dir.appending("restored/vault/plain.txt")) == Array("public".utf8))

        // Through pipes: backup to standard output, verify and restore from standard input.
        let piped = a.run(["backup", "vault", "-C", w.dir.path.string, "-o", "-"])
        #expect(piped.status == 0, "\(piped.stderr)")
        #expect(!String(decoding: piped.stdoutBytes, as: UTF8.self).contains("the secret plan"))
        #expect(a.run(["verify", "-"], stdin: piped.stdoutBytes).status == 0)
        let r2 = a.run(["restore", "-", "-C", w.dir.appending("from-stdin").string], stdin: piped.stdoutBytes)
        #expect(r2.status == 0, "\(r2.stderr)")
        #expect(a.run(["cat", w.dir.appending("from-stdin/vault/secret.txt").string]).stdout == "the secret plan")
    }

    @Test("bad archives: truncated (20), unsafe paths (11), missing (10)")
    func failures() throws {
        let w = try World()
        TestFiles.write(FilePath(w.path("f.txt")), TestFiles.bytes(10_000, seed: 1))
        #expect(w.alice.run(["encrypt", w.path("f.txt")]).status == 0)
        let archive = w.dir.appending("a.tar")
        #expect(w.alice.run(["backup", "vault", "-C", w.dir.path.string, "-o", archive.string]).status == 0)
        let bytes = TestFiles.read(archive)
        let cut = w.dir.write("cut.tar", Array(bytes[0..<(bytes.count - 2_000)]))
        let v = w.alice.run(["verify", cut.string])
        #expect(v.status == 20)
        #expect(v.stderr.contains("truncated"))
        let r = w.alice.run(["restore", cut.string, "-C", w.dir.appending("out").string])
        #expect(r.status == 20)
        #expect(r.stderr.contains("truncated"))
        // "../escape": a hand-made ustar header (name, mode, ids, size 0, mtime, typeflag '0', magic).
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ at: Int, _ s: String) { for (i, b) in s.utf8.enumerated() { block[at + i] = b } }
        put(0, "../escape")
        put(100, "0000644")
        put(108, "0000000")
        put(116, "0000000")
        put(124, "00000000000")
        put(136, "00000000000")
        block[156] = UInt8(ascii: "0")
        put(257, "ustar")
        put(263, "00")
        for i in 148..<156 { block[i] = 0x20 }
        put(148, String(String(block.reduce(0) { $0 + Int($1) }, radix: 8).suffix(6)).leftPadded(to: 6) + "\0")
        let hostile = w.dir.write("hostile.tar", block + [UInt8](repeating: 0, count: 1_024))
        let h = w.alice.run(["restore", hostile.string, "-C", w.dir.appending("h").string])
        #expect(h.status == 11, "\(h.stderr)")
        #expect(h.stderr.contains("../escape"))
        #expect(!TestFiles.exists(w.dir.appending("escape")))
        #expect(w.alice.run(["verify", hostile.string]).status == 11)
        #expect(w.alice.run(["restore", w.dir.appending("missing.tar").string, "-C", w.dir.appending("m").string]).status == 10)
    }
}

extension String {
    func leftPadded(to n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}
