// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import SystemPackage

struct WindowsDecryptCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decrypt",
        abstract: "Decrypt Windows EFS data with the user's or a recovery agent's key.",
        discussion: """
            The plaintext goes to OUT (created atomically, mode 0600; named streams become user.NAME extended \
            attributes) or to standard output (named streams are then skipped with a warning).
            """
    )

    @OptionGroup var source: WindowsInputOptions
    @OptionGroup var key: WindowsKeyOptions

    @Option(name: .short, help: ArgumentHelp("Output file ('-', the default, is standard output).", valueName: "OUT"))
    var output: String = "-"

    func run() throws {
        try CLI.run {
            let input = try source.input()
            let k = try key.load()
            let result: WindowsDecryption
            if output == "-" {
                result = try input.decrypt(key: k, to: .standardOutput)
                for s in result.namedStreams {
                    CLI.warn("named stream '\(s.name)' (\(s.value.count) bytes) skipped: standard output carries only the unnamed stream (use -o OUT)")
                }
            } else {
                result = try input.decrypt(key: k, toFile: FilePath(output))
            }
            result.warn()
        }
    }
}
