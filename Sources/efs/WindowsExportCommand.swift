// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import SystemPackage

struct WindowsExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write an encrypted file as a Windows raw stream (or ntfs-3g efs_raw + $EFS) with your key.",
        discussion: """
            The data is re-encrypted with AES-256 for each user's and recovery agent's RSA certificate (EC \
            certificates cannot be represented in Windows EFS and are skipped). The stream follows the spec and \
            Windows' observed layout but has not been tried on Windows.
            """
    )

    @Argument(help: "The encrypted file.")
    var path: String

    @Option(
        name: .short,
        help: ArgumentHelp("The Windows raw stream to write ('-' is standard output); the efs_raw with --ntfs3g.", valueName: "STREAM"))
    var output: String

    @Option(
        name: .customLong("ntfs3g"),
        help: ArgumentHelp("Write ntfs-3g's form instead: efs_raw to STREAM and the $EFS bytes to EFSINFO_OUT.", valueName: "EFSINFO_OUT"))
    var efsInfo: String?

    @Option(help: ArgumentHelp("A private key from outside your key store that opens the file: a PKCS#12 file or a PEM/DER PKCS#8 RSA key (its certificate from the PKCS#12 file or --cert).", valueName: "KEY"))
    var key: String?

    @Option(help: ArgumentHelp("The certificate of --key (PEM or DER).", valueName: "CERT"))
    var cert: String?

    @OptionGroup var passphrase: PassphraseOptions

    func run() throws {
        try CLI.run {
            if efsInfo != nil, output == "-" {
                throw EFSError(.invalidArgument, "--ntfs3g writes files: give -o EFS_RAW_FILE")
            }
            let session = passphrase.session()
            if let key { try session.useKey(try WindowsKeyOptions.load(key: key, cert: cert, passphrase: passphrase)) }
            let r = try session.exportWindows(FilePath(path), to: output, ntfs3gEFSInfo: efsInfo.map { FilePath($0) })
            for s in r.skipped {
                CLI.warn("skipped \(s.isRecovery ? "recovery agent" : "user") \(s.name) (\(s.thumbprint)): \(s.reason)")
            }
            for s in r.skippedStreams { CLI.warn("extended attribute '\(s.name)' skipped: \(s.reason)") }
        }
    }
}
