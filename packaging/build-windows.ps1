# Build the Windows installer: the PyInstaller bundle, smoke-tested, then an Inno Setup .exe.
#
#   powershell -ExecutionPolicy Bypass -File packaging\build-windows.ps1 [OUT_DIR]
#
# Runs in .github/workflows/release.yml on windows-latest. Needs Python 3.11+ on PATH
# (or GAMBIARRA_PYTHON) and Inno Setup 6.3+ (installed with Chocolatey when missing).
param([string]$Out = "dist")
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..")
New-Item -ItemType Directory -Force -Path $Out | Out-Null
$Out = (Resolve-Path $Out).Path
$Python = if ($env:GAMBIARRA_PYTHON) { $env:GAMBIARRA_PYTHON } else { "python" }

function Invoke-Checked {
    param([string]$Program, [string[]]$Arguments)
    & $Program @Arguments
    if ($LASTEXITCODE -ne 0) { throw "$Program $($Arguments -join ' ') failed ($LASTEXITCODE)" }
}

Invoke-Checked $Python @("-m", "pip", "install", "--quiet", "-e", ".[package]")
$Version = (& $Python -c "import gambiarra_desktop; print(gambiarra_desktop.__version__)").Trim()
$env:GAMBIARRA_VERSION = $Version
$env:GAMBIARRA_ICONS = Join-Path (Get-Location) "build\icons"

Invoke-Checked $Python @("packaging\tools\icons.py", "--out", $env:GAMBIARRA_ICONS)
Invoke-Checked $Python @("-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
    "--workpath", "build\pyinstaller", "--distpath", "build\bundle",
    "packaging\pyinstaller\gambiarra.spec")
$Bundle = (Resolve-Path "build\bundle\gambiarra-desktop").Path

# Smoke test: the windowed exe has no console, so its exit code is the answer.
$env:QT_QPA_PLATFORM = "offscreen"
$SelfTest = Start-Process -FilePath (Join-Path $Bundle "gambiarra-desktop.exe") `
    -ArgumentList "--self-test" -Wait -PassThru
Remove-Item Env:\QT_QPA_PLATFORM
if ($SelfTest.ExitCode -ne 0) { throw "the bundled app failed its self-test ($($SelfTest.ExitCode))" }
Invoke-Checked (Join-Path $Bundle "gambiarra.exe") @("--version")

$Iscc = (Get-Command iscc.exe -ErrorAction SilentlyContinue).Source
if (-not $Iscc) { $Iscc = Join-Path ${env:ProgramFiles(x86)} "Inno Setup 6\ISCC.exe" }
if (-not (Test-Path $Iscc)) {
    Invoke-Checked "choco" @("install", "innosetup", "--no-progress", "-y")
}
Invoke-Checked $Iscc @("/Qp", "/DAppVersion=$Version", "/DBundleDir=$Bundle",
    "/DOutputDir=$Out", "/DIconFile=$($env:GAMBIARRA_ICONS)\gambiarra.ico",
    "packaging\windows\gambiarra.iss")
Get-ChildItem $Out -Filter "*.exe" | ForEach-Object { Write-Host "build-windows: $($_.FullName)" }
