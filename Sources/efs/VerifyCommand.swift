// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import EFSSystem
import SystemPackage

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check an archive made by efs backup, and every raw stream in it, without any key.",
        discussion: """
            Checks every header, that every path would be restored below the destination, and the structure of \
            every encrypted file's and directory's raw stream, as a restore would; nothing is written. Prints one \
            summary line. Exit status 20 for a malformed or truncated archive, 28 for a malformed raw stream.
            """
    )

    @Argument(help: ArgumentHelp("The archive ('-' for standard input).", valueName: "ARCHIVE"))
    var archive: String

    func validate() throws {
        if archive == "-", Sys.isTerminal(.standardInput) {
            throw ValidationError("refusing to read an archive from a terminal: give a file or a pipe")
        }
    }

    func run() throws {
        try CLI.run {
            let progress = ArchiveProgress("verify")
            defer { progress.clear() }
            let input = try ArchiveFile.open(archive)
            defer { if archive != "-" { Sys.close(input) } }
            let summary = try EFSBackup.verify(from: input, issues: progress.issue, progress: progress.update)
            progress.clear()
            if let last = summary.lastFailure {
                CLI.warn("\(summary.failures) of \(summary.entries + summary.failures) entries failed verification")
                throw ExitCode(ExitStatus.code(for: last))
            }
            print("\(archive): ok: \(summary.entries) entries, \(summary.rawStreams) encrypted (raw streams), \(summary.bytes) bytes")
        }
    }
}
