// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import EFSSystem
import SystemPackage

struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore an archive made by efs backup. Encrypted files come back from their raw streams: no key is used.",
        discussion: """
            Every entry lands below DIR: absolute paths, '..' components and paths through symbolic links are \
            refused. Owners are restored when running as root. An entry that fails is reported and the restore goes \
            on; the exit status is then that of the last failure. A malformed or truncated archive stops the restore \
            with exit status 20.
            """
    )

    @Argument(help: ArgumentHelp("The archive ('-' for standard input).", valueName: "ARCHIVE"))
    var archive: String

    @Option(name: .customShort("C"), help: ArgumentHelp("The directory to restore into (created if missing).", valueName: "DIR"))
    var directory: String

    func validate() throws {
        if archive == "-", Sys.isTerminal(.standardInput) {
            throw ValidationError("refusing to read an archive from a terminal: give a file or a pipe")
        }
    }

    func run() throws {
        try CLI.run {
            let progress = ArchiveProgress("restore")
            defer { progress.clear() }
            let input = try ArchiveFile.open(archive)
            defer { if archive != "-" { Sys.close(input) } }
            let summary = try EFSBackup.restore(from: input, into: FilePath(directory), issues: progress.issue, progress: progress.update)
            progress.clear()
            if let last = summary.lastFailure {
                CLI.warn("\(summary.failures) of \(summary.entries + summary.failures) entries could not be restored")
                throw ExitCode(ExitStatus.code(for: last))
            }
        }
    }
}

/// Opening an archive named on the command line.
enum ArchiveFile {
    static func open(_ name: String) throws -> FileDescriptor {
        if name == "-" { return .standardInput }
        do { return try Sys.open(FilePath(name), .readOnly) } catch {
            throw EFSError(error == .noSuchFileOrDirectory ? .fileNotFound : .accessDenied, "\(name): \(error)")
        }
    }
}
