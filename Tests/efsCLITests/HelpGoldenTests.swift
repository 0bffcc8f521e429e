// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSTestSupport
import Foundation
import SystemPackage
import Testing

/// The `--help` of every command, frozen in `Golden/help/efs-SUB-COMMAND.txt`.
///
/// The command forms are a contract that scripts and the other issues rely on; a change to any help text (a
/// renamed option, a dropped subcommand, a new default) shows up here as a diff to review. The commands are found
/// by walking the SUBCOMMANDS sections from `efs --help`, so a new subcommand without a golden file fails too.
/// After an intended change: `EFS_UPDATE_GOLDEN=1 swift test --filter HelpGolden`, then review `git diff`.
@Suite("efs --help golden files")
struct HelpGoldenTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/help")
    static let update = ProcessInfo.processInfo.environment["EFS_UPDATE_GOLDEN"] == "1"

    /// A fixed width, so the wrapping does not depend on the terminal the tests run in.
    let runner = CLIRunner(home: FilePath("/nonexistent"), extra: ["COLUMNS": "100"])

    func help(_ command: [String]) -> CLIRunner.Result { runner.run(command + ["--help"]) }

    /// The subcommand names listed in a help text's SUBCOMMANDS section.
    static func subcommands(_ text: String) -> [String] {
        var names: [String] = []
        var inSection = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("SUBCOMMANDS:") { inSection = true; continue }
            guard inSection else { continue }
            // The list ends at its first blank line (then comes "  See 'efs help <subcommand>' …").
            if line.isEmpty { if names.isEmpty { continue } else { break } }
            if !line.hasPrefix(" ") { break }
            // "  name   description": exactly two spaces, then the name (descriptions that wrap are indented more).
            guard line.hasPrefix("  "), !line.hasPrefix("   ") else { continue }
            let name = line.dropFirst(2).prefix { !$0.isWhitespace }
            if let first = name.first, first.isLowercase, name.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "-" }) {
                names.append(String(name))
            }
        }
        return names
    }

    /// Every command path, from `efs` down.
    func allCommands() -> [[String]] {
        var out: [[String]] = []
        var queue: [[String]] = [[]]
        while let c = queue.first {
            queue.removeFirst()
            out.append(c)
            for s in Self.subcommands(help(c).stdout) where s != "help" { queue.append(c + [s]) }
        }
        return out
    }

    static func fileName(_ command: [String]) -> String { (["efs"] + command).joined(separator: "-") + ".txt" }

    @Test("every command's --help matches its golden file, and every golden file is a command")
    func golden() throws {
        let commands = allCommands()
        #expect(commands.count >= 30, "the walk found only \(commands.map { $0.joined(separator: " ") })")
        if Self.update { try FileManager.default.createDirectory(at: Self.directory, withIntermediateDirectories: true) }
        for c in commands {
            let r = help(c)
            #expect(r.status == 0, "efs \(c.joined(separator: " ")) --help: \(r.stderr)")
            #expect(r.stdout.contains("USAGE:"))
            #expect(r.stdout.contains("OVERVIEW:") || c.isEmpty, "efs \(c.joined(separator: " ")) has no overview")
            let file = Self.directory.appendingPathComponent(Self.fileName(c))
            if Self.update {
                try Data(r.stdoutBytes).write(to: file)
                continue
            }
            guard let expected = try? String(contentsOf: file, encoding: .utf8) else {
                Issue.record("no golden file \(file.lastPathComponent) for 'efs \(c.joined(separator: " "))' (EFS_UPDATE_GOLDEN=1 makes it)")
                continue
            }
            #expect(r.stdout == expected, "efs \(c.joined(separator: " ")) --help differs from \(file.lastPathComponent)")
        }
        let known = Set(commands.map(Self.fileName))
        let files = (try? FileManager.default.contentsOfDirectory(atPath: Self.directory.path)) ?? []
        for f in files where f.hasSuffix(".txt") && !known.contains(f) {
            Issue.record("golden file \(f) names no command any more")
        }
    }

    @Test("the SUBCOMMANDS parser reads names and skips wrapped descriptions")
    func parser() {
        let text = """
            OVERVIEW: x

            SUBCOMMANDS:
              key                     Manage your
                                      keys.
              raw-thing               Other.

              See 'efs help <subcommand>' for detailed help.
            """
        #expect(Self.subcommands(text) == ["key", "raw-thing"])
    }
}
