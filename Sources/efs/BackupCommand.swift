// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import EFSSystem
import SystemPackage

struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Write a pax archive of files and directories. Encrypted ones go in as raw streams: no key is used.",
        discussion: """
            Like robocopy /EFSRAW: encrypted files and directories are archived in their encrypted state, so the \
            archive never holds their plaintext; plain files go in as they are. Modes, owners, times, symbolic links, \
            hard links and extended attributes are kept, and tar -tvf lists the archive. Symbolic links are not \
            followed, and other file systems are not entered. A file that cannot be read is reported and left out; \
            the exit status is then that of the last such failure.
            """
    )

    @Argument(help: "Files or directories to archive (names are kept as given, without a leading '/').")
    var sources: [String]

    @Option(name: .short, help: ArgumentHelp("The archive ('-' for standard output).", valueName: "ARCHIVE"))
    var output: String

    @Option(name: .customShort("C"), help: ArgumentHelp("Find relative sources below DIR, as tar -C does.", valueName: "DIR"))
    var directory: String?

    func validate() throws {
        guard !sources.isEmpty else { throw ValidationError("give at least one file or directory to archive") }
        if output == "-", Sys.isTerminal(.standardOutput) {
            throw ValidationError("refusing to write an archive to a terminal: use -o FILE or a pipe")
        }
    }

    func run() throws {
        try CLI.run {
            let progress = ArchiveProgress("backup")
            let options = EFSBackup.Options(relativeTo: directory.map { FilePath($0) })
            let paths = sources.map { FilePath($0) }
            let summary: EFSBackup.Summary
            if output == "-" {
                summary = try EFSBackup.backup(paths, to: .standardOutput, options: options, issues: progress.issue, progress: progress.update)
            } else {
                // Write beside the archive and rename, so a failed backup leaves no partial archive behind.
                let final = FilePath(output)
                let partial = FilePath(output + ".partial")
                let fd: FileDescriptor
                do throws(Errno) { fd = try Sys.open(partial, [.writeOnly, .create, .truncate], mode: [.ownerReadWrite]) } catch {
                    throw EFSError(error == .noSuchFileOrDirectory ? .fileNotFound : .accessDenied, "\(partial): \(error)")
                }
                var closed = false
                do {
                    summary = try EFSBackup.backup(paths, to: fd, options: options, issues: progress.issue, progress: progress.update)
                    try Sys.fsync(fd)
                    Sys.close(fd)
                    closed = true
                    try Sys.rename(partial, final)
                } catch {
                    if !closed { Sys.close(fd) }  // never twice: the number may be another descriptor's by now
                    try? Sys.unlink(partial)
                    progress.clear()
                    throw error
                }
            }
            progress.clear()
            if let last = summary.lastFailure {
                CLI.warn("\(summary.failures) of \(summary.entries + summary.failures) entries could not be archived")
                throw ExitCode(ExitStatus.code(for: last))
            }
        }
    }
}
