// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSTestSupport
import Foundation
import SystemPackage
import Testing

/// Real `SIGKILL` at seeded random times (the complement of the `EFS_CRASH_AT` sweeps, which stop only at system
/// call boundaries): each operation is started, killed after a random delay between zero and
/// its own measured duration, and the result checked: the file holds its old or its new state, only hidden
/// temporary names are left, and `efs fsck --keys` finds nothing but that litter (which `--repair` removes).
///
/// `EFS_KILL_RUNS` (default 100) sets the kills per operation; `EFS_KILL_SEED` (hex) the seed.
@Suite("Crash safety: random SIGKILL")
struct KillTests {
    enum Operation: String, CaseIterable, Sendable, CustomStringConvertible {
        case encrypt, decrypt, usersAdd = "users add", rekey, rawImport = "raw import", restore
        var description: String { rawValue }
    }

    static var runs: Int { ProcessInfo.processInfo.environment["EFS_KILL_RUNS"].flatMap { Int($0) } ?? 100 }
    static var seed: UInt64 { ProcessInfo.processInfo.environment["EFS_KILL_SEED"].flatMap { UInt64($0, radix: 16) } ?? 0x4B11_1ED }

    /// Starts `args` and kills it with SIGKILL after `delay` seconds (if it is still running). Returns whether it
    /// finished by itself, with status 0.
    func runKilled(_ runner: CLIRunner, _ args: [String], after delay: Double) throws -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: runner.binary)
        p.arguments = args
        p.environment = runner.environment
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let until = Date().addingTimeInterval(delay)
        while p.isRunning && Date() < until { Thread.sleep(forTimeInterval: 0.0005) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        return p.terminationReason == .exit && p.terminationStatus == 0
    }

    /// Seconds an uninterrupted run of `args` takes (after `reset`): the fastest of three, so that the kills
    /// spread over the run rather than mostly after it.
    func duration(_ runner: CLIRunner, _ args: [String], reset: () throws -> Void) throws -> Double {
        var best = Double.infinity
        for _ in 0..<3 {
            try reset()
            let t0 = Date()
            let r = runner.run(args)
            try #require(r.status == 0, "\(args): \(r.stderr)")
            best = min(best, Date().timeIntervalSince(t0))
        }
        return best
    }

    /// Names in `dir` other than `allowed` and hidden temporary names.
    func visibleLitter(_ dir: FilePath, allowed: Set<String>) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.string)) ?? []
        return names.filter { !allowed.contains($0) && !($0.hasPrefix(".") && $0.contains(".efs-tmp-")) }
    }

    /// fsck finds nothing, or only temporary litter; after `--repair` it finds nothing.
    func expectCleanAfterRepair(_ w: World, _ dir: FilePath, _ label: String) {
        let check = w.alice.run(["fsck", "--keys", dir.string])
        let onlyLitter = check.stdout.split(separator: "\n").dropLast().allSatisfy { $0.contains(".efs-tmp-") }
        #expect(check.status == 0 || (check.status == 31 && onlyLitter), "\(label): fsck: \(check.stdout) \(check.stderr)")
        #expect(w.alice.run(["fsck", "--repair", dir.string]).status == 0, "\(label): fsck --repair")
        #expect(w.alice.run(["fsck", "--keys", dir.string]).status == 0, "\(label): fsck after repair")
    }

    @Test("every kill leaves the old or the new state", arguments: Operation.allCases)
    func randomKills(_ op: Operation) throws {
        let w = try World()
        let plain = TestFiles.bytes(3 * 1_048_576 + 333, seed: 9)
        let path = FilePath(w.path("f.bin"))
        var rng = SplitMix64(seed: Self.seed &+ UInt64(op.rawValue.utf8.reduce(0) { $0 &* 31 &+ UInt64($1) }))

        // The operation, how to put the starting state back, and how to check a result.
        var args: [String] = []
        var reset: () throws -> Void = {}
        var check: (Int) -> Void = { _ in }
        var scratch = w.vault  // the directory whose litter and fsck are checked

        func decrypts(_ p: FilePath, by runner: CLIRunner) -> Bool {
            let r = runner.run(["cat", p.string])
            return r.status == 0 && TestFiles.same(r.stdoutBytes, plain)
        }
        func isEncrypted(_ p: FilePath) -> Bool { TestFiles.read(p).starts(with: [0x89, 0x45, 0x46, 0x53]) }

        switch op {
        case .encrypt, .decrypt:
            TestFiles.write(path, plain)
            try #require(w.alice.run(["encrypt", path.string]).status == 0)
            let encrypted = TestFiles.read(path)
            let start = op == .encrypt ? plain : encrypted
            args = [op.rawValue, path.string]
            reset = { TestFiles.write(path, start) }
            check = { i in
                let now = TestFiles.read(path)
                let ok = TestFiles.same(now, plain) || (isEncrypted(path) && decrypts(path, by: w.alice))
                #expect(ok, "\(op) kill \(i): the file is neither the old nor the new state")
            }
        case .usersAdd, .rekey:
            TestFiles.write(path, plain)
            try #require(w.alice.run(["encrypt", path.string]).status == 0)
            let before = TestFiles.read(path)
            let bob = CLIRunner(home: w.dir.appending("bob-home"))
            let b = bob.run(["key", "new", "--name", "bob", "--no-passphrase"])
            try #require(b.status == 0)
            let bobPem = w.dir.appending("bob.pem")
            _ = bob.run(["key", "export", b.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "--cert", "-o", bobPem.string])
            if op == .usersAdd {
                args = ["users", "add", path.string, bobPem.string]
            } else {
                try #require(w.alice.run(["key", "new", "--name", "alice2", "--no-passphrase"]).status == 0)
                args = ["rekey", path.string]
            }
            reset = { TestFiles.write(path, before) }
            check = { i in
                #expect(decrypts(path, by: w.alice), "\(op) kill \(i): alice can no longer read the file")
                let r = w.alice.run(["users", "--json", path.string])
                #expect(r.status == 0, "\(op) kill \(i): users: \(r.stderr)")
            }
        case .rawImport:
            TestFiles.write(path, plain)
            try #require(w.alice.run(["encrypt", path.string]).status == 0)
            let stream = w.dir.appending("f.raw")
            try #require(w.alice.run(["raw", "export", path.string, "-o", stream.string]).status == 0)
            let target = FilePath(w.path("imported.bin"))
            args = ["raw", "import", stream.string, target.string]
            reset = { try? FileManager.default.removeItem(atPath: target.string) }
            check = { i in
                if TestFiles.exists(target) {
                    #expect(decrypts(target, by: w.alice), "\(op) kill \(i): an imported file that does not open")
                }
            }
        case .restore:
            for k in 0..<6 { TestFiles.write(FilePath(w.path("r\(k).bin")), TestFiles.bytes(200_000 * k, seed: UInt64(k))) }
            TestFiles.write(path, plain)
            try #require(w.alice.run(["encrypt", "-r", w.vault.string]).status == 0)
            let archive = w.dir.appending("b.tar")
            try #require(w.alice.run(["backup", "vault", "-C", w.dir.path.string, "-o", archive.string]).status == 0)
            let into = w.dir.appending("restored")
            scratch = into.appending("vault")
            args = ["restore", archive.string, "-C", into.string]
            reset = { try? FileManager.default.removeItem(atPath: into.string) }
            check = { i in
                // Each file is absent or whole.
                for name in (try? FileManager.default.contentsOfDirectory(atPath: scratch.string)) ?? [] where !name.hasPrefix(".") {
                    let r = w.alice.run(["cat", scratch.appending(name).string])
                    #expect(r.status == 0, "\(op) kill \(i): restored \(name) does not open: \(r.stderr)")
                    if name == "f.bin" { #expect(TestFiles.same(r.stdoutBytes, plain), "\(op) kill \(i): f.bin differs") }
                }
            }
        }

        let full = try duration(w.alice, args, reset: reset)
        var finished = 0
        for i in 0..<Self.runs {
            try reset()
            let delay = Double.random(in: 0...full, using: &rng)
            if try runKilled(w.alice, args, after: delay) { finished += 1 }
            check(i)
            let allowed: Set<String> = [".efs", "f.bin", "imported.bin", "r0.bin", "r1.bin", "r2.bin", "r3.bin", "r4.bin", "r5.bin"]
            if TestFiles.exists(scratch) {
                #expect(visibleLitter(scratch, allowed: allowed).isEmpty, "\(op) kill \(i): litter \(visibleLitter(scratch, allowed: allowed))")
            }
            if i % 20 == 19, TestFiles.exists(scratch) { expectCleanAfterRepair(w, scratch, "\(op) kill \(i)") }
        }
        print("random SIGKILL: \(op): \(Self.runs) runs, \(Self.runs - finished) killed mid-way, run time \(String(format: "%.3f", full)) s")
        #expect(finished < Self.runs, "\(op): at least one kill landed before the end")
    }
}
