// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import Foundation
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
        try CLI.run {
            let store = KeyStore(root: KeyStore.defaultLocation())
            let provider = passphrase.provider()
            let inputs = try files.map { (bytes: try CLI.readInput($0), source: $0) }
            let text = inputs.map { String(decoding: $0.bytes, as: UTF8.self) }.joined()
            let needsProtection = !noPassphrase && text.contains("PRIVATE KEY-----") && text.replacingOccurrences(of: "ENCRYPTED PRIVATE KEY", with: "").contains("PRIVATE KEY-----")
            let protect = needsProtection ? try passphrase.newPassphrase(what: "the imported key") : nil
            let results = try store.importFiles(inputs, passphrase: {
                try provider(PassphraseRequest(thumbprint: Thumbprint(bytes: [UInt8](repeating: 0, count: 20))!, displayName: files.joined(separator: ", "), attempt: 1))
            }, protect: protect)
            for r in results {
                print("\(r.certificate.thumbprint)  \(r.certificate.displayName)\(r.withPrivateKey ? "  (with private key)" : "")")
            }
        }
    }
}
