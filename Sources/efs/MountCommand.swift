// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import EFSFUSE
import EFSSystem
import SystemPackage
import Synchronization

struct MountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mount",
        abstract: "Mount a volume with FUSE: encrypted files read and write as plaintext with your keys.",
        discussion: """
            Your keys are unlocked before the mount starts (a prompt, --passphrase-file FILE or \
            $EFS_PASSPHRASE_FILE) and kept in memory only. Files created in a directory marked encrypted are \
            encrypted for your current key and the volume's recovery agents. Unmount with 'efs unmount MOUNTPOINT' \
            or fusermount3 -u; SIGINT and SIGTERM unmount too.
            """
    )

    @Argument(help: "The volume, or a directory inside it.")
    var volume: String

    @Argument(help: "The directory to mount on.")
    var mountpoint: String

    @Flag(help: "Stay in the foreground instead of running in the background.")
    var foreground = false

    @Option(name: .customShort("o"), help: ArgumentHelp("Mount options, comma-separated: allow_other, ro, … (may repeat).", valueName: "OPTIONS"))
    var options: [String] = []

    @Option(name: .customLong("io-uring"), help: ArgumentHelp("Take requests through io_uring: auto (when the kernel allows it: Linux 6.14 or later with fuse.enable_uring on), on, off.", valueName: "WHEN"))
    var ioURing: IOURingMode = .auto

    @Flag(help: .hidden)
    var debug = false

    @OptionGroup var passphrase: PassphraseOptions

    func run() throws {
        try CLI.run {
            // Before any passphrase or key is in memory (a core dump while asking would hold the passphrase).
            _ = Sys.protectSecretsInMemory()
            // Passphrases may be asked for only until the mount starts: the background process has no terminal.
            let gate = Atomic<Bool>(true)
            let provider = passphrase.provider()
            let session = EFSSession(
                keyStore: KeyStore(root: KeyStore.defaultLocation()),
                passphrase: { request in
                    guard gate.load(ordering: .acquiring) else {
                        throw EFSError(.wrongPassphrase, "the key \(request.displayName) was not unlocked when the volume was mounted")
                    }
                    return try provider(request)
                },
                maximumAttempts: passphrase.fileName == nil ? 3 : 1)
            let current = session.keyStore.currentThumbprint()
            for failure in try session.unlockAllKeys() {
                if failure.certificate.thumbprint == current { throw failure.error }
                CLI.warn("\(failure.error.message); files only that key opens will give 'permission denied'")
            }
            if current == nil {
                CLI.warn("you have no current EFS key: files cannot be created in encrypted directories (run 'efs key new')")
            }
            gate.store(false, ordering: .releasing)
            var mountOptions = MountOptions()
            mountOptions.foreground = foreground
            mountOptions.debug = debug
            mountOptions.ioURing = ioURing
            mountOptions.fuseOptions = options.flatMap { $0.split(separator: ",").map(String.init) }.filter { !$0.isEmpty }
            // Again in the serving process: mlockall is not inherited across the fork into the background.
            try EFSMount.run(volume: FilePath(volume), at: FilePath(mountpoint), session: session, options: mountOptions) {
                if let missing = Sys.protectSecretsInMemory() { CLI.warn(missing) }
            }
        }
    }
}

extension IOURingMode: ExpressibleByArgument {}
