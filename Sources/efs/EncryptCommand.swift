// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import SystemPackage

struct EncryptCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encrypt",
        abstract: "Encrypt files in place (atomically), or mark directories so new files in them are encrypted.",
        discussion: "With -r, a directory is marked and every file below it is encrypted too (like cipher /e /s)."
    )

    @Argument(help: "Files or directories.")
    var paths: [String]

    @Flag(name: .short, help: "Recurse into directories.")
    var recursive = false

    @Flag(help: "After replacing a file, overwrite the old plaintext blocks with zeros and flush them.")
    var wipe = false

    @Flag(name: .short, help: "Print each path as it is done.")
    var verbose = false

    @OptionGroup var passphrase: PassphraseOptions

    func run() throws {
        let session = passphrase.session()
        try CLI.forEach(paths) { path in
            let top = FilePath(path)
            try Tree.visit(top, recursive: recursive, directoriesFirst: true) { p in
                // Below the top, a volume root or a directory where encryption is disabled is walked, not marked.
                if recursive, Files.isDirectory(p) {
                    let s = try session.fileEncryptionStatus(at: p)
                    if s == .rootDirectory || (s == .directoryDisallowed && p != top) {
                        return
                    }
                }
                if recursive, p != top, !Files.isDirectory(p),
                    try session.fileEncryptionStatus(at: p) == .directoryDisallowed
                {
                    return
                }
                try session.encryptFile(at: p, options: ReplaceOptions(wipeOld: wipe))
                if verbose { print("encrypted \(p)") }
            }
        }
    }
}

/// Walks a path for the recursive commands, skipping swift-efs's own files.
enum Tree {
    static func visit(_ path: FilePath, recursive: Bool, directoriesFirst: Bool, _ body: (FilePath) throws -> Void) throws {
        let isDir = Files.isDirectory(path)
        if !recursive || !isDir {
            try body(path)
            return
        }
        if directoriesFirst { try body(path) }
        // Symbolic links are not followed or changed (their targets may lie outside the tree).
        for name in try Files.list(path) where !Files.isInternal(name) && !Files.isSymlink(path.appending(name)) {
            try visit(path.appending(name), recursive: true, directoriesFirst: directoriesFirst, body)
        }
        if !directoriesFirst { try body(path) }
    }
}
