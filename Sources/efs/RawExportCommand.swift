// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import EFSSystem
import SystemPackage

struct RawExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write an encrypted file or directory as a raw stream (ReadEncryptedFileRaw). No key is used."
    )

    @Argument(help: "The encrypted file or directory.")
    var path: String

    @Option(name: .short, help: ArgumentHelp("Output file ('-', the default, is standard output).", valueName: "FILE"))
    var output: String = "-"

    @Flag(help: "Leave out named streams (EFS_DROP_ALTERNATE_STREAMS).")
    var dropStreams = false

    func run() throws {
        try CLI.run {
            let p = FilePath(path)
            var flags: RawFlags = dropStreams ? [.dropAlternateStreams] : []
            if Files.isDirectory(p) { flags.insert(.createForDirectory) }
            let ctx = try RawContext.open(p, flags: flags)
            defer { ctx.close() }
            if output == "-" {
                try ctx.export(to: .standardOutput)
                return
            }
            // Write beside the output and rename, so a failed export leaves no partial stream behind.
            let out = FilePath(output)
            let tmp = FilePath(output + ".partial")
            let fd: FileDescriptor
            do throws(Errno) { fd = try Sys.open(tmp, [.writeOnly, .create, .truncate], mode: [.ownerReadWrite, .groupRead, .otherRead]) } catch {
                throw EFSError(.accessDenied, "\(tmp): \(error)")
            }
            var closed = false
            do {
                try ctx.export(to: fd)
                try Sys.fsync(fd)
                Sys.close(fd)
                closed = true
                try Sys.rename(tmp, out)
            } catch {
                if !closed { Sys.close(fd) }  // never twice: the number may be another descriptor's by now
                try? Sys.unlink(tmp)
                throw error
            }
        }
    }
}
