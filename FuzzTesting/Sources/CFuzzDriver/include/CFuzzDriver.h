// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.
#ifndef CFUZZDRIVER_H
#define CFUZZDRIVER_H
#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver (compiler-rt FuzzerInterface.h), linked by `-sanitize=fuzzer`.
///
/// SwiftPM links every executable target with `main` aliased to `<Target>_main` (so executables stay testable),
/// and `-parse-as-library` means that symbol is never emitted, so the link fails (swiftlang/swift#75800,
/// swift-package-manager#8731). Each fuzz target therefore defines `<Target>_main` itself and hands over to this
/// driver, which is exactly what libFuzzer's own `main` does.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*UserCb)(const uint8_t *Data, size_t Size));

#endif
