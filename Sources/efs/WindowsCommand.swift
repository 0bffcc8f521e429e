// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import EFSCore
import SystemPackage

struct WindowsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "windows",
        abstract: "Open Windows EFS data on Linux: inspect, decrypt or import it, or export a file for Windows.",
        discussion: """
            FILE is a Windows raw stream (ROBS, as ReadEncryptedFileRaw and backup tools write it), or with \
            --efsinfo an ntfs-3g efs_raw file and the $EFS bytes of its system.ntfs_efsinfo attribute. Keys are the \
            user's or a recovery agent's RSA key: a PKCS#12 file (cipher /x, the certificate manager) or PEM PKCS#8.
            """,
        subcommands: [
            WindowsInspectCommand.self, WindowsDecryptCommand.self, WindowsImportCommand.self,
            WindowsExportCommand.self,
        ]
    )
}

/// The Windows input of a command: FILE and `--efsinfo`.
struct WindowsInputOptions: ParsableArguments {
    @Argument(help: "A Windows raw stream (ROBS), or an ntfs-3g efs_raw file with --efsinfo.")
    var file: String

    @Option(
        name: .customLong("efsinfo"),
        help: ArgumentHelp("The $EFS bytes (system.ntfs_efsinfo) that go with an efs_raw FILE.", valueName: "EFSFILE"))
    var efsInfo: String?

    func input() throws -> WindowsInput {
        try WindowsInput.detect(FilePath(file), efsInfo: efsInfo.map { FilePath($0) })
    }
}

/// The key of a command: `--key`, `--cert` and the passphrase options.
struct WindowsKeyOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The private key: a PKCS#12 file (.pfx, .p12) or a PEM/DER PKCS#8 key.", valueName: "KEY"))
    var key: String

    @Option(
        help: ArgumentHelp(
            "The key's certificate (PEM or DER): its thumbprint chooses the DDF or DRF entry. Without one, the PKCS#12 file's certificate is used, or every entry is tried.",
            valueName: "CERT"))
    var cert: String?

    @OptionGroup var passphrase: PassphraseOptions

    func load() throws -> WindowsKey {
        try Self.load(key: key, cert: cert, passphrase: passphrase)
    }

    static func load(key: String, cert: String?, passphrase: PassphraseOptions) throws -> WindowsKey {
        let bytes = try CLI.readInput(key, maximum: PKCS12File.maximumFileSize)
        let certificate = try cert.map { try CLI.readInput($0) }
        return try WindowsKey.load(bytes, source: key, certificate: certificate) { try passphrase.passphrase(for: key) }
    }
}

extension WindowsDecryption {
    /// Prints the one-line weak-algorithm warning and the streams that were not kept.
    func warn() {
        if isWeak { CLI.warn("weak encryption (3DES/DESX): the data was encrypted with \(algorithm)") }
        for s in skippedStreams { CLI.warn("named stream '\(s.name)' skipped: \(s.reason)") }
    }
}
