// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import EFSSystem
import SystemPackage

struct RawImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Create or replace a file or directory from a raw stream (WriteEncryptedFileRaw). No key is used.",
        discussion: "The stream is checked whole before the target is replaced atomically; a bad stream changes nothing."
    )

    @Argument(help: "The raw stream ('-' for standard input).")
    var stream: String

    @Argument(help: "The file or directory to create or replace.")
    var path: String

    @Flag(name: .customLong("dir"), help: "The object is a directory (CREATE_FOR_DIR).")
    var directory = false

    @Flag(help: "Allow replacing a hidden (dot-named) object (OVERWRITE_HIDDEN).")
    var overwriteHidden = false

    @Flag(help: "Ignore named streams in the input (EFS_DROP_ALTERNATE_STREAMS).")
    var dropStreams = false

    func run() throws {
        try CLI.run {
            var flags: RawFlags = [.createForImport]
            if directory { flags.insert(.createForDirectory) }
            if overwriteHidden { flags.insert(.overwriteHidden) }
            if dropStreams { flags.insert(.dropAlternateStreams) }
            let input: FileDescriptor
            if stream == "-" {
                input = .standardInput
            } else {
                do throws(Errno) { input = try Sys.open(FilePath(stream), .readOnly) } catch {
                    throw EFSError(error == .noSuchFileOrDirectory ? .fileNotFound : .accessDenied, "\(stream): \(error)")
                }
            }
            defer { if stream != "-" { Sys.close(input) } }
            let ctx = try RawContext.open(FilePath(path), flags: flags)
            defer { ctx.close() }
            try ctx.importStream(from: input)
        }
    }
}
