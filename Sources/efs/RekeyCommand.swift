// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import SystemPackage

struct RekeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rekey",
        abstract: "Rewrap files to your current key and the volume's recovery policy (like cipher /u).",
        discussion: "Only the key lists change; the data is not re-encrypted. Files you hold no key for are skipped."
    )

    @Argument(help: "Files or directories.")
    var paths: [String]

    @Flag(name: .short, help: "Recurse into directories.")
    var recursive = false

    @Flag(name: .short, help: "Print each file and what happened to it.")
    var verbose = false

    @OptionGroup var passphrase: PassphraseOptions

    func run() throws {
        let session = passphrase.session()
        var updated = 0, unchanged = 0, skipped = 0
        try CLI.forEach(paths) { path in
            for r in try session.rekey(at: FilePath(path), recursive: recursive) {
                switch r.outcome {
                case .updated:
                    updated += 1
                    if verbose { print("updated \(r.path)") }
                case .unchanged:
                    unchanged += 1
                    if verbose { print("unchanged \(r.path)") }
                case .skipped(let why):
                    skipped += 1
                    if verbose { print("skipped \(r.path): \(why)") }
                }
            }
        }
        print("\(updated) updated, \(unchanged) unchanged, \(skipped) skipped")
    }
}
