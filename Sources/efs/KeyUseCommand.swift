// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS

struct KeyUseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "use",
        abstract: "Make a key the current one for newly encrypted files (SetUserFileEncryptionKey).",
        discussion: "Existing files keep their keys until 'efs rekey'."
    )

    @Argument(help: "The key's thumbprint (spaces allowed, any case, or a unique prefix of 8+ hex digits).")
    var thumbprint: String

    func run() throws {
        try CLI.run {
            let store = KeyStore(root: KeyStore.defaultLocation())
            let t = try store.resolve(thumbprint)
            try store.setCurrent(t)
        }
    }
}
