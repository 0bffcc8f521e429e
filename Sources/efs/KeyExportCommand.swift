// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import EFSCore

struct KeyExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a certificate (--cert) or a passphrase-protected private key (--private) as PEM."
    )

    @Argument(help: "The key's thumbprint or a unique prefix.")
    var thumbprint: String

    @Flag(help: "Export the certificate only.")
    var cert = false

    @Flag(name: .customLong("private"), help: "Export the private key (PKCS#8, encrypted).")
    var privateKey = false

    @Option(name: .short, help: ArgumentHelp("Output file ('-' for standard output).", valueName: "FILE"))
    var output: String

    @Flag(help: "Export an unencrypted private key without protecting it.")
    var noPassphrase = false

    @OptionGroup var passphrase: PassphraseOptions

    func validate() throws {
        if cert == privateKey { throw ValidationError("give exactly one of --cert and --private") }
    }

    func run() throws {
        try CLI.run {
            let store = KeyStore(root: KeyStore.defaultLocation())
            let t = try store.resolve(thumbprint)
            if cert {
                try CLI.writeOutput(output, Array(try store.certificate(t).pem.utf8), secret: false)
                return
            }
            let protect = noPassphrase ? nil : try passphrase.newPassphraseIfNeeded(store, t)
            try CLI.writeOutput(output, Array(try store.exportPrivateKey(t, protect: protect).utf8), secret: true)
        }
    }
}

extension PassphraseOptions {
    /// A passphrase to protect an exported key, asked only when the stored key is not already encrypted.
    func newPassphraseIfNeeded(_ store: KeyStore, _ t: EFSCore.Thumbprint) throws -> EFSCore.Passphrase? {
        if let e = try store.list().first(where: { $0.thumbprint == t }), e.privateKeyIsEncrypted { return nil }
        return try newPassphrase(what: "the exported key")
    }
}
