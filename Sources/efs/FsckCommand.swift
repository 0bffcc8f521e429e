// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import EFSSystem
import SystemPackage

struct FsckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fsck",
        abstract: "Check every encrypted file of a volume or tree; with --keys, authenticate every block.",
        discussion: """
            Exit status 0: clean. 31: problems found (each printed as PATH: what, with byte ranges for bad blocks). \
            --repair removes temporary files left by interrupted operations, and nothing else.
            """
    )

    @Argument(help: "The volume or directory to check.")
    var path: String

    @Flag(help: "Also unwrap each file's key and authenticate all of its data (needs your keys).")
    var keys = false

    @Flag(help: "Remove temporary litter (.NAME.efs-tmp-XXXX) left by crashes. Never touches user data.")
    var repair = false

    @OptionGroup var passphrase: PassphraseOptions

    func run() throws {
        try CLI.run {
            let root = FilePath(path)
            guard (try? Sys.stat(root)) != nil else { throw EFSError(.fileNotFound, "\(path): no such file or directory") }
            let check = FileSystemCheck(session: keys ? passphrase.session() : nil, repair: repair)
            let report = check.check(root)
            for p in report.problems { print("\(p.path): \(p.message)") }
            for r in report.litterRemoved { print("removed \(r)") }
            for r in report.writesCompleted { print("completed an interrupted write in \(r)") }
            var line = "\(report.filesChecked) files, \(report.encryptedFiles) encrypted"
            if keys { line += ", \(report.blocksAuthenticated) blocks authenticated" }
            line += ", \(report.problems.count) problem\(report.problems.count == 1 ? "" : "s")"
            if repair { line += ", \(report.litterRemoved.count) temporary file\(report.litterRemoved.count == 1 ? "" : "s") removed" }
            print(line)
            if !report.isClean { throw ExitCode(ExitStatus.fsckProblems) }
        }
    }
}
