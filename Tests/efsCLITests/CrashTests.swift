// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSSystem
import EFSTestSupport
import Foundation
import SystemPackage
import Testing

/// Crash injection: `EFS_CRASH_AT=any:N` makes the debug binary exit (status 86) just before its Nth write, fsync,
/// truncate or rename. For every N until the operation completes, the file must afterwards hold its old state or
/// its new one, and only temporary files may be left beside it.
@Suite("Crash safety", .enabled(if: FaultInjection.isAvailable))
struct CrashTests {
    enum Content: Equatable { case plain, encrypted, other(String) }

    /// Whether `path` holds `expected` in plaintext, or encrypted (and readable by alice), or neither.
    func content(_ w: World, _ path: String, _ expected: [UInt8]) -> Content {
        let raw = TestFiles.read(FilePath(path))
        if raw.starts(with: [0x89, 0x45, 0x46, 0x53]) {
            let r = w.alice.run(["cat", path])
            guard r.status == 0 else { return .other(r.stderr) }
            return TestFiles.same(r.stdoutBytes, expected) ? .encrypted : .other("decrypts to other bytes")
        }
        return TestFiles.same(raw, expected) ? .plain : .other("plaintext differs")
    }

    /// Runs `args` with a crash before the Nth call for N = 1, 2, … until it succeeds; calls `check` after each.
    func sweep(_ w: World, _ args: [String], reset: () -> Void, check: (Int) -> Void) -> Int {
        var n = 1
        while n < 10_000 {
            reset()
            let r = w.alice.run(args, env: ["EFS_CRASH_AT": "any:\(n)"])
            check(n)
            if r.status == 0 { return n - 1 }
            #expect(r.status == FaultInjection.exitStatus, "crash point \(n): \(r.stderr)")
            n += 1
        }
        return n
    }

    func leftovers(_ dir: FilePath, allowed: Set<String>) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.string)) ?? []
        return names.filter { !allowed.contains($0) && !$0.contains(".efs-tmp-") }
    }

    func cleanTemporaries(_ dir: FilePath) {
        for n in (try? FileManager.default.contentsOfDirectory(atPath: dir.string)) ?? [] where n.contains(".efs-tmp-") {
            try? FileManager.default.removeItem(atPath: dir.appending(n).string)
        }
    }

    @Test("encrypt and decrypt: every crash point leaves the old or the new file")
    func encryptDecrypt() throws {
        let w = try World()
        let plain = TestFiles.bytes(9 * 1_048_576 + 77, seed: 42)  // several write chunks
        let path = w.path("big.bin")
        let points = sweep(w, ["encrypt", path], reset: {
            cleanTemporaries(w.vault)
            TestFiles.write(FilePath(path), plain)
        }, check: { n in
            let c = content(w, path, plain)
            #expect(c == .plain || c == .encrypted, "encrypt crash point \(n): \(c)")
            #expect(leftovers(w.vault, allowed: [".efs", "big.bin"]).isEmpty)
            // fsck names only temporary litter, and --repair leaves the volume clean.
            let check = w.alice.run(["fsck", "--keys", w.vault.string])
            #expect(check.status == 0 || (check.status == 31 && check.stdout.split(separator: "\n").dropLast().allSatisfy { $0.contains(".efs-tmp-") }), "crash point \(n): \(check.stdout)")
            #expect(w.alice.run(["fsck", "--repair", w.vault.string]).status == 0)
            #expect(w.alice.run(["fsck", "--keys", w.vault.string]).status == 0)
        })
        #expect(points >= 5)
        let encrypted = TestFiles.read(FilePath(path))
        let dpoints = sweep(w, ["decrypt", path], reset: {
            cleanTemporaries(w.vault)
            TestFiles.write(FilePath(path), encrypted)
        }, check: { n in
            let c = content(w, path, plain)
            #expect(c == .plain || c == .encrypted, "decrypt crash point \(n): \(c)")
        })
        #expect(dpoints >= 3)
        print("crash points: encrypt \(points), decrypt \(dpoints)")
    }

    @Test("users add/remove and rekey: every crash point leaves the old or the new key lists")
    func keyLists() throws {
        let w = try World()
        let plain = TestFiles.bytes(100_000, seed: 7)
        let path = w.path("u.bin")
        TestFiles.write(FilePath(path), plain)
        #expect(w.alice.run(["encrypt", path]).status == 0)
        let bob = CLIRunner(home: w.dir.appending("bob-home"))
        let b = bob.run(["key", "new", "--name", "bob", "--no-passphrase"])
        try #require(b.status == 0)
        _ = bob.run(["key", "export", b.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "--cert", "-o", w.dir.appending("bob.pem").string])
        let before = TestFiles.read(FilePath(path))
        func users() -> [String] {
            let r = w.alice.run(["users", "--json", path])
            let rows = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [[String: Any]]
            return ((rows?.first?["users"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String }
        }
        let add = sweep(w, ["users", "add", path, w.dir.appending("bob.pem").string], reset: {
            TestFiles.write(FilePath(path), before)
        }, check: { n in
            #expect(content(w, path, plain) == .encrypted, "add crash point \(n)")
            #expect([["alice"], ["alice", "bob"]].contains(users()), "add crash point \(n): \(users())")
        })
        let afterAdd = TestFiles.read(FilePath(path))
        let bobTP = b.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let remove = sweep(w, ["users", "remove", path, bobTP], reset: {
            TestFiles.write(FilePath(path), afterAdd)
        }, check: { n in
            #expect(content(w, path, plain) == .encrypted, "remove crash point \(n)")
            #expect([["alice"], ["alice", "bob"]].contains(users()), "remove crash point \(n)")
        })
        let k2 = w.alice.run(["key", "new", "--name", "alice2", "--no-passphrase"])
        try #require(k2.status == 0)
        let rekey = sweep(w, ["rekey", path], reset: {
            TestFiles.write(FilePath(path), afterAdd)
        }, check: { n in
            #expect(content(w, path, plain) == .encrypted, "rekey crash point \(n)")
            #expect([["alice", "bob"], ["alice2", "bob"]].contains(users()), "rekey crash point \(n): \(users())")
        })
        #expect(add >= 2 && remove >= 2 && rekey >= 2)
        print("crash points: users add \(add), users remove \(remove), rekey \(rekey)")
    }
}
