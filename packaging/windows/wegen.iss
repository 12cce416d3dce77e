; Inno Setup script for WeGen desktop on Windows (x64): a per-user or all-users installer of the
; one-folder bundle that `python packaging/build.py bundle` makes in build\packaging\VARIANT\dist.
;
;   iscc /DVersion=0.1.0 /DVariant=cpu /DBundle=build\packaging\cpu\dist\wegen packaging\windows\wegen.iss
;
; Not built or run on the project's Linux machines: .github/workflows/installers.yml builds it on
; a hosted Windows runner. User data lives in %APPDATA%\WeGen and is never removed by uninstall.

#ifndef Version
  #define Version "0.1.0"
#endif
#ifndef Variant
  #define Variant "cpu"
#endif
#ifndef Bundle
  #define Bundle "..\..\build\packaging\" + Variant + "\dist\wegen"
#endif

[Setup]
AppId={{6B1C2E55-3F7A-4E0B-9C7E-2D5A8F1B7E40}
AppName=WeGen
AppVersion={#Version}
AppPublisher=WeGen desktop developers
DefaultDirName={autopf}\WeGen
DefaultGroupName=WeGen
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename=wegen-{#Version}-windows-x64-{#Variant}-setup
SetupIconFile=..\..\build\packaging\{#Variant}\icons\wegen.ico
UninstallDisplayIcon={app}\wegen.exe
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
LicenseFile=..\..\LICENSE

[Files]
Source: "{#Bundle}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\WeGen"; Filename: "{app}\wegen.exe"
Name: "{autodesktop}\WeGen"; Filename: "{app}\wegen.exe"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; Flags: unchecked

[Run]
Filename: "{app}\wegen.exe"; Description: "{cm:LaunchProgram,WeGen}"; Flags: nowait postinstall skipifsilent
