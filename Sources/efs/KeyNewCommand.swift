// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import EFSCore
import EFSSystem

struct KeyNewCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new",
        abstract: "Create a key pair and a self-signed EFS certificate; print its thumbprint.",
        discussion: "A user key becomes the current key (like SetUserFileEncryptionKey). EC P-256 is the default."
    )

    @Option(help: "The certificate's common name (default: your login name).")
    var name: String?

    @Flag(help: "Make a recovery agent key (File Recovery certificate) instead of a user key.")
    var recoveryAgent = false

    @Option(help: ArgumentHelp("Use an EC key on this curve.", valueName: "p256|p384"))
    var ec: String?

    @Option(help: ArgumentHelp("Use an RSA key of this many bits.", valueName: "2048|3072|4096"))
    var rsa: Int?

    @Flag(help: "Store the private key without a passphrase.")
    var noPassphrase = false

    @OptionGroup var passphrase: PassphraseOptions

    func validate() throws {
        if ec != nil && rsa != nil { throw ValidationError("give --ec or --rsa, not both") }
        if let ec, !["p256", "p384", "P256", "P384", "p-256", "p-384"].contains(ec) { throw ValidationError("--ec takes p256 or p384") }
        if let rsa, ![2048, 3072, 4096].contains(rsa) { throw ValidationError("--rsa takes 2048, 3072 or 4096") }
        if noPassphrase && passphrase.passphraseFile != nil { throw ValidationError("give --no-passphrase or --passphrase-file, not both") }
    }

    func run() throws {
        try CLI.run {
            let kind: UserPrivateKey.Kind
            if let rsa { kind = .rsa(bits: rsa) } else if let ec, ec.contains("384") { kind = .p384 } else { kind = .p256 }
            let who = name ?? Sys.userName()
            let pass = noPassphrase ? nil : try passphrase.newPassphrase(what: "the new key of \(who)")
            let store = KeyStore(root: KeyStore.defaultLocation())
            let cert = try store.generateKey(name: who, kind: kind, recoveryAgent: recoveryAgent, passphrase: pass)
            print(cert.thumbprint)
        }
    }
}
