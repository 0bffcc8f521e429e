// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import EFSCore

struct KeyImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import certificates and private keys (PEM or DER; PKCS#8 keys, encrypted or not).",
        discussion: "An unencrypted private key is protected with a new passphrase unless --no-passphrase is given."
    )

    @Argument(help: "Files to import.")
    var files: [String]

    @Flag(help: "Store unencrypted private keys without a passphrase.")
    var noPassphrase = false

    @OptionGroup var passphrase: PassphraseOptions

    func run() throws {
        let store = KeyStore(root: KeyStore.defaultLocation())
        let provider = passphrase.provider()
        try CLI.forEach(files) { file in
            let bytes = try CLI.readInput(file)
            let text = String(decoding: bytes, as: UTF8.self)
            let needsProtection = !noPassphrase && text.contains("PRIVATE KEY") && !text.contains("ENCRYPTED PRIVATE KEY")
            let protect = needsProtection ? try passphrase.newPassphrase(what: "the imported key") : nil
            let results = try store.importFile(bytes, source: file, passphrase: {
                try provider(PassphraseRequest(thumbprint: .init(bytes: [UInt8](repeating: 0, count: 20))!, displayName: file, attempt: 1))
            }, protect: protect)
            for r in results {
                print("\(r.certificate.thumbprint)  \(r.certificate.displayName)\(r.withPrivateKey ? "  (with private key)" : "")")
            }
        }
    }
}
