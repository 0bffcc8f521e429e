// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import EFSSystem
import SystemPackage

struct CatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cat",
        abstract: "Decrypt files to standard output with your key."
    )

    @Argument(help: "Encrypted files.")
    var paths: [String]

    @OptionGroup var passphrase: PassphraseOptions

    func run() throws {
        let session = passphrase.session()
        try CLI.forEach(paths) { path in
            let file = try session.open(at: FilePath(path))
            var offset: UInt64 = 0
            let size = file.size
            while offset < size {
                let chunk = try file.read(at: offset, count: 1 << 20)
                if chunk.isEmpty { break }
                try Sys.writeAll(.standardOutput, chunk)
                offset += UInt64(chunk.count)
            }
        }
    }
}
