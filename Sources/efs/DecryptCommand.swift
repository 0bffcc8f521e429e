// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import SystemPackage

struct DecryptCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decrypt",
        abstract: "Decrypt files in place (atomically), or unmark directories.",
        discussion: "With -r, every file below a directory is decrypted too."
    )

    @Argument(help: "Files or directories.")
    var paths: [String]

    @Flag(name: .short, help: "Recurse into directories.")
    var recursive = false

    @Flag(help: "After replacing a file, overwrite the old ciphertext blocks with zeros and flush them.")
    var wipe = false

    @Flag(name: .short, help: "Print each path as it is done.")
    var verbose = false

    @OptionGroup var passphrase: PassphraseOptions

    func run() throws {
        let session = passphrase.session()
        try CLI.forEach(paths) { path in
            try Tree.visit(FilePath(path), recursive: recursive, directoriesFirst: false) { p in
                try session.decryptFile(at: p, options: ReplaceOptions(wipeOld: wipe))
                if verbose { print("decrypted \(p)") }
            }
        }
    }
}
