// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFS
import EFSSystem
import EFSTestSupport
import Foundation
import SystemPackage
import Testing

/// One crash-injection sweep of an `efs` command (`EFS_CRASH_AT=any:N`: the debug binary exits with status 86
/// just before its Nth write, fsync, truncate or rename).
///
/// The command is first run to completion from the starting state, which gives the state it leads to. Then, for
/// N = 1, 2, … until a run completes, the starting state is put back, the command is run with a crash before its
/// Nth call, and the tree is checked:
/// - every object holds its old state or its new one, and every temporary name is hidden (``TreeState``);
/// - the file system check names exactly the temporary litter and nothing else; its repair removes exactly that
///   litter and changes nothing else; then the check is clean. Through `efs fsck --keys` / `--repair` (exit status
///   and output) at every ``cliFsckEvery``th point, in process (``FileSystemCheck`` without keys: the state capture
///   has already authenticated every block) at the others.
struct CrashSweep {
    var label: String
    var runner: CLIRunner
    var args: [String]
    /// The tree whose state is compared and checked.
    var root: FilePath
    /// alice's keys, in process, to read the tree.
    var session: EFSSession
    var reset: () throws -> Void
    /// More checks after each crash.
    var afterCrash: ((Int) throws -> Void)?
    /// After each crash (and its checks), run the command again, uninterrupted, over what the crash left: it must
    /// succeed and lead to the same state as a run from the start (the crash's litter may stay, for the file
    /// system check that follows).
    var rerun = false
    var cliFsckEvery = 10

    /// Runs the sweep; returns the number of crash points (the calls the completed run made).
    func run() throws -> Int {
        try reset()
        let old = TreeState.capture(root, session: session)
        let clean = runner.run(args)
        try #require(clean.status == 0, "\(label): the uninterrupted run failed: \(clean.stderr)")
        let new = TreeState.capture(root, session: session)
        try #require(new.temporaries.isEmpty && new.problems(old: new, new: new).isEmpty, "\(label): the completed run left \(new.temporaries)")
        var n = 1
        while n < 10_000 {
            try reset()
            let r = runner.run(args, env: ["EFS_CRASH_AT": "any:\(n)"])
            if r.status == 0 {
                let done = TreeState.capture(root, session: session)
                #expect(done.problems(old: new, new: new).isEmpty, "\(label): a run that completed under EFS_CRASH_AT differs from the clean run")
                return n - 1
            }
            try #require(r.status == FaultInjection.exitStatus, "\(label) crash point \(n): exit \(r.status): \(r.stderr)")
            var now = TreeState.capture(root, session: session)
            let problems = now.problems(old: old, new: new)
            #expect(problems.isEmpty, "\(label) crash point \(n): \(problems.joined(separator: "\n"))")
            try afterCrash?(n)
            if rerun {
                let again = runner.run(args)
                #expect(again.status == 0, "\(label) crash point \(n): the command run again failed: \(again.stderr)")
                now = TreeState.capture(root, session: session)
                #expect(now.objects == new.objects, "\(label) crash point \(n): run again: \(now.problems(old: new, new: new))")
            }
            checkFileSystem(now, point: n, viaCLI: n % cliFsckEvery == 0)
            n += 1
        }
        Issue.record("\(label): no run completed")
        return n
    }

    /// fsck names exactly the temporaries of `now`; repair removes exactly them and nothing else; then it is clean.
    ///
    /// In process, without keys (the capture of `now` already read and authenticated every block): the repair's
    /// own walk finding no problem is the clean check after it. Through `efs fsck`: `--keys`, `--repair`, `--keys`.
    func checkFileSystem(_ now: TreeState, point n: Int, viaCLI: Bool) {
        let where_ = "\(label) crash point \(n)"
        // A crash before the command made its destination (restore's `-C DEST`) leaves nothing to check.
        guard TestFiles.exists(root) else { return }
        let litter = Set(now.temporaries.map { root.appending($0).string })
        let before = TreeState.fingerprint(root)
        if viaCLI {
            let check = runner.run(["fsck", "--keys", root.string])
            let lines = check.stdout.split(separator: "\n").map(String.init).dropLast()
            let named = Set(lines.compactMap { $0.split(separator: ": ", maxSplits: 1).first.map(String.init) })
            #expect(check.status == (litter.isEmpty ? 0 : 31), "\(where_): efs fsck exit \(check.status): \(check.stdout)\(check.stderr)")
            #expect(named == litter && lines.allSatisfy { $0.contains(TemporaryName.marker) }, "\(where_): efs fsck named \(lines), the litter is \(litter.sorted())")
            let repair = runner.run(["fsck", "--repair", root.string])
            let removed = Set(repair.stdout.split(separator: "\n").filter { $0.hasPrefix("removed ") }.map { String($0.dropFirst("removed ".count)) })
            #expect(repair.status == 0 && removed == litter, "\(where_): efs fsck --repair exit \(repair.status), removed \(removed.sorted()), the litter is \(litter.sorted())")
            let again = runner.run(["fsck", "--keys", root.string])
            #expect(again.status == 0, "\(where_): efs fsck after the repair: \(again.stdout)\(again.stderr)")
        } else {
            let report = FileSystemCheck(session: nil, repair: false).check(root)
            let named = Set(report.problems.map(\.path.string))
            #expect(report.problems.allSatisfy { $0.kind == .litter } && named == litter, "\(where_): fsck found \(report.problems), the litter is \(litter.sorted())")
            let repair = FileSystemCheck(session: nil, repair: true).check(root)
            #expect(repair.isClean && Set(repair.litterRemoved.map(\.string)) == litter, "\(where_): fsck --repair removed \(repair.litterRemoved), left \(repair.problems)")
        }
        // The repair removed the litter and touched nothing else.
        var expected = before
        for t in now.temporaries {
            expected = expected.filter { $0.key != t && !$0.key.hasPrefix(t + "/") }
        }
        let after = TreeState.fingerprint(root)
        let changed = Set(after.keys).union(expected.keys).filter { after[$0] != expected[$0] }.sorted()
        #expect(changed.isEmpty, "\(where_): the repair changed more than the litter: \(changed)")
    }
}

/// A saved copy of a tree (`cp -a`: modes, times and extended attributes), to put back before each crash point.
struct SavedTree {
    let copy: FilePath
    let original: FilePath

    init(_ original: FilePath, in dir: TemporaryDirectory, as name: String) throws {
        self.original = original
        copy = dir.appending(name)
        try? FileManager.default.removeItem(atPath: copy.string)
        try #require(Self.cp(original, copy), "cp -a \(original)")
    }

    /// Replaces the tree with the saved copy.
    func restore() throws {
        try? FileManager.default.removeItem(atPath: original.string)
        try #require(Self.cp(copy, original), "cp -a back to \(original)")
    }

    private static func cp(_ from: FilePath, _ to: FilePath) -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/cp")
        p.arguments = ["-a", from.string, to.string]
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }
}
