// Fake catalog and package index for the mock API (web/mock/server.mjs). Invented but plausible:
// three distros, a few dozen packages with dependencies, a virtual package, a conflict and a
// package whose dependency does not exist in newer releases (unsatisfiable there).

export const DISTROS = [
  {
    id: 'debian-12', name: 'Debian 12', codename: 'bookworm', family: 'debian', support: 'oldstable, LTS until 2028-06', lifecycle: { release: 'oldstable', until: '2028-06', ended: false },
    architectures: ['amd64', 'arm64', 'armhf', 'i386', 'ppc64el', 's390x', 'mips64el'].map((name) => ({ name, ports: false, available: true, unavailable: null })),
  },
  {
    id: 'debian-11', name: 'Debian 11', codename: 'bullseye', family: 'debian', support: 'oldoldstable, LTS until 2026-08', lifecycle: { release: 'oldoldstable', until: '2026-08', ended: false },
    architectures: ['amd64', 'arm64', 'armhf', 'i386'].map((name) => ({ name, ports: false, available: true, unavailable: null })),
  },
  {
    id: 'ubuntu-24.04', name: 'Ubuntu 24.04 LTS', codename: 'noble', family: 'ubuntu', support: 'LTS, standard support until 2029-05', lifecycle: { release: 'lts', until: '2029-05', ended: false },
    architectures: [
      { name: 'amd64', ports: false, available: true, unavailable: null },
      // like a server with no ports mirror configured (issue #13, item 2)
      ...['arm64', 'armhf', 'ppc64el', 's390x', 'riscv64'].map((name) => ({ name, ports: true, available: false, unavailable: 'no_mirror' })),
    ],
  },
]

const SUITES = {
  'debian-12': { release: 'bookworm/main', updates: 'bookworm-updates/main', security: 'bookworm-security/main' },
  'debian-11': { release: 'bullseye/main', updates: 'bullseye-updates/main', security: 'bullseye-security/main' },
  'ubuntu-24.04': { release: 'noble/main', updates: 'noble-updates/main', security: 'noble-security/main' },
}

// [name, {d12, d11, u24} versions (missing = not in that release), size, summary, fields]
// fields: d = Depends, r = Recommends, p = Provides, c = Conflicts, base = in the minimal baseline,
// pocket = 'security' | 'updates' (default: the release pocket)
const P = (name, v, size, summary, f = {}) => ({ name, v, size, summary, ...f })
const V = (d12, d11, u24) => ({ 'debian-12': d12, 'debian-11': d11, 'ubuntu-24.04': u24 })

const PACKAGES = [
  // the base system (minimal baseline)
  P('libc6', V('2.36-9+deb12u9', '2.31-13+deb11u11', '2.39-0ubuntu8.4'), 2755000, 'GNU C Library: Shared libraries', { base: true, pocket: 'security' }),
  P('libgcc-s1', V('12.2.0-14', '10.2.1-6', '14.2.0-4ubuntu2~24.04'), 49000, 'GCC support library', { base: true, d: ['libc6'] }),
  P('libstdc++6', V('12.2.0-14', '10.2.1-6', '14.2.0-4ubuntu2~24.04'), 613000, 'GNU Standard C++ Library v3', { d: ['libc6', 'libgcc-s1'] }),
  P('zlib1g', V('1:1.2.13.dfsg-1', '1:1.2.11.dfsg-2+deb11u2', '1:1.3.dfsg-3.1ubuntu2.1'), 87000, 'compression library - runtime', { base: true, d: ['libc6'] }),
  P('libzstd1', V('1.5.4+dfsg2-5', '1.4.8+dfsg-2.1', '1.5.5+dfsg2-2build1.1'), 284000, 'fast lossless compression algorithm', { base: true, d: ['libc6'] }),
  P('liblzma5', V('5.4.1-1', '5.2.5-2.1~deb11u1', '5.6.1+really5.4.5-1build0.1'), 205000, 'XZ-format compression library', { base: true, d: ['libc6'] }),
  P('libtinfo6', V('6.4-4', '6.2+20201114-2+deb11u2', '6.4+20240113-1ubuntu2'), 316000, 'shared low-level terminfo library for terminal handling', { base: true, d: ['libc6'] }),
  P('libcrypt1', V('1:4.4.33-2', '1:4.4.18-4', '1:4.4.36-4build1'), 89000, 'libcrypt shared library', { base: true, d: ['libc6'] }),
  P('libpcre2-8-0', V('10.42-1', '10.36-2+deb11u1', '10.42-4ubuntu2.1'), 262000, 'New Perl Compatible Regular Expression Library- 8 bit runtime files', { base: true, d: ['libc6'] }),
  P('libsystemd0', V('252.33-1~deb12u1', '247.3-7+deb11u6', '255.4-1ubuntu8.6'), 331000, 'systemd utility library', { base: true, pocket: 'updates', d: ['libc6', 'libzstd1', 'liblzma5'] }),
  P('adduser', V('3.134', '3.118+deb11u1', '3.137ubuntu1'), 166000, 'add and remove users and groups', { base: true }),
  P('libssl3', V('3.0.15-1~deb12u1', undefined, '3.0.13-0ubuntu3.4'), 2020000, 'Secure Sockets Layer toolkit - shared libraries', { pocket: 'security', d: ['libc6'] }),
  P('libssl1.1', V(undefined, '1.1.1w-0+deb11u2', undefined), 1566000, 'Secure Sockets Layer toolkit - shared libraries', { pocket: 'security', d: ['libc6'] }),
  P('libncursesw6', V('6.4-4', '6.2+20201114-2+deb11u2', '6.4+20240113-1ubuntu2'), 134000, 'shared libraries for terminal handling (wide character support)', { d: ['libc6', 'libtinfo6'] }),
  // web servers
  P('nginx', V('1.22.1-9+deb12u1', '1.18.0-6.1+deb11u3', '1.24.0-2ubuntu7.1'), 528000, 'small, powerful, scalable web/proxy server',
    { pocket: 'security', p: ['httpd'], d: ['nginx-common (= {v})', 'libc6 (>= 2.34)', 'libcrypt1 (>= 1:4.1.0)', 'libpcre2-8-0 (>= 10.22)', 'libssl3 (>= 3.0.0) | libssl1.1 (>= 1.1.1)', 'zlib1g (>= 1:1.1.4)'] }),
  P('nginx-common', V('1.22.1-9+deb12u1', '1.18.0-6.1+deb11u3', '1.24.0-2ubuntu7.1'), 113000, 'small, powerful, scalable web/proxy server - common files', { pocket: 'security', r: ['ssl-cert'] }),
  P('ssl-cert', V('1.1.2', '1.1.0+nmu1', '1.1.2ubuntu1'), 22000, 'simple debconf wrapper for OpenSSL', { d: ['openssl'] }),
  P('openssl', V('3.0.15-1~deb12u1', '1.1.1w-0+deb11u2', '3.0.13-0ubuntu3.4'), 1428000, 'Secure Sockets Layer toolkit - cryptographic utility', { pocket: 'security', d: ['libc6', 'libssl3 | libssl1.1'] }),
  P('apache2', V('2.4.62-1~deb12u2', '2.4.62-1~deb11u2', '2.4.58-1ubuntu8.5'), 218000, 'Apache HTTP Server', { pocket: 'security', p: ['httpd'], d: ['apache2-bin (= {v})', 'apache2-data (= {v})', 'apache2-utils (= {v})'], r: ['ssl-cert'] }),
  P('apache2-bin', V('2.4.62-1~deb12u2', '2.4.62-1~deb11u2', '2.4.58-1ubuntu8.5'), 1371000, 'Apache HTTP Server (modules and other binary files)', { pocket: 'security', d: ['libc6', 'libpcre2-8-0', 'libssl3 | libssl1.1', 'zlib1g'] }),
  P('apache2-data', V('2.4.62-1~deb12u2', '2.4.62-1~deb11u2', '2.4.58-1ubuntu8.5'), 160000, 'Apache HTTP Server (common files)', { pocket: 'security' }),
  P('apache2-utils', V('2.4.62-1~deb12u2', '2.4.62-1~deb11u2', '2.4.58-1ubuntu8.5'), 209000, 'Apache HTTP Server (utility programs for web servers)', { pocket: 'security', d: ['libc6', 'libssl3 | libssl1.1'] }),
  // tools
  P('htop', V('3.2.2-2', '3.0.5-7', '3.3.0-4build1'), 152000, 'interactive processes viewer', { d: ['libc6 (>= 2.34)', 'libncursesw6 (>= 6)', 'libnl-3-200 (>= 3.2.7)', 'libnl-genl-3-200 (>= 3.2.7)', 'libtinfo6 (>= 6)'] }),
  P('libnl-3-200', V('3.7.0-0.2+b1', '3.4.0-1+b1', '3.7.0-0.3build1.1'), 63000, 'library for dealing with netlink sockets', { d: ['libc6'] }),
  P('libnl-genl-3-200', V('3.7.0-0.2+b1', '3.4.0-1+b1', '3.7.0-0.3build1.1'), 21000, 'library for dealing with netlink sockets - generic netlink', { d: ['libc6', 'libnl-3-200 (= {v})'] }),
  P('jq', V('1.6-2.1', '1.6-2.1', '1.7.1-3build1'), 64000, 'lightweight and flexible command-line JSON processor', { d: ['libjq1 (= {v})', 'libc6'] }),
  P('libjq1', V('1.6-2.1', '1.6-2.1', '1.7.1-3build1'), 135000, 'lightweight and flexible command-line JSON processor - shared library', { d: ['libonig5 (>= 6.1.0)', 'libc6'] }),
  P('libonig5', V('6.9.8-1', '6.9.6-1.1', '6.9.9-1build1'), 188000, 'regular expressions library', { d: ['libc6'] }),
  P('curl', V('7.88.1-10+deb12u8', '7.74.0-1.3+deb11u14', '8.5.0-2ubuntu10.6'), 315000, 'command line tool for transferring data with URL syntax', { pocket: 'security', d: ['libcurl4 (= {v})', 'libc6', 'zlib1g'] }),
  P('libcurl4', V('7.88.1-10+deb12u8', '7.74.0-1.3+deb11u14', '8.5.0-2ubuntu10.6'), 390000, 'easy-to-use client-side URL transfer library (OpenSSL flavour)', { pocket: 'security', d: ['libc6', 'libnghttp2-14', 'libssl3 | libssl1.1', 'libzstd1', 'zlib1g'], r: ['ca-certificates'] }),
  P('libnghttp2-14', V('1.52.0-1+deb12u2', '1.43.0-1+deb11u2', '1.59.0-1ubuntu0.1'), 72000, 'library implementing HTTP/2 protocol (shared library)', { d: ['libc6'] }),
  P('ca-certificates', V('20230311', '20210119', '20240203'), 153000, 'Common CA certificates', { d: ['openssl (>= 1.1.1)'] }),
  P('vim', V('2:9.0.1378-2', '2:8.2.2434-3+deb11u1', '2:9.1.0016-1ubuntu7.5'), 1567000, 'Vi IMproved - enhanced vi editor', { d: ['vim-common (= {v})', 'vim-runtime (= {v})', 'libc6', 'libtinfo6'] }),
  P('vim-common', V('2:9.0.1378-2', '2:8.2.2434-3+deb11u1', '2:9.1.0016-1ubuntu7.5'), 125000, 'Vi IMproved - Common files'),
  P('vim-runtime', V('2:9.0.1378-2', '2:8.2.2434-3+deb11u1', '2:9.1.0016-1ubuntu7.5'), 7025000, 'Vi IMproved - Runtime files'),
  // containers
  P('docker.io', V('20.10.24+dfsg1-1+b3', '20.10.5+dfsg1-1+deb11u2', '26.1.3-0ubuntu1~24.04.1'), 16712000, 'Linux container runtime',
    { d: ['adduser', 'containerd (>= 1.4~)', 'runc (>= 1.0.0~rc2~)', 'iptables', 'libc6', 'libsystemd0'], r: ['apparmor', 'ca-certificates', 'git', 'pigz', 'xz-utils'] }),
  P('containerd', V('1.6.20~ds1-1+b1', '1.4.13~ds1-1~deb11u4', '1.7.24-0ubuntu1~24.04.2'), 25312000, 'open and reliable container runtime', { d: ['runc (>= 1.0.0~rc2~)', 'libc6'] }),
  P('runc', V('1.1.5+ds1-1+deb12u1', '1.0.0~rc93+ds1-5+deb11u5', '1.1.12-0ubuntu3.1'), 2705000, 'Open Container Project - runtime', { d: ['libc6', 'libseccomp2'] }),
  P('libseccomp2', V('2.5.4-1+deb12u1', '2.5.1-1+deb11u1', '2.5.5-1ubuntu3.1'), 46000, 'high level interface to Linux seccomp filter', { d: ['libc6'] }),
  P('iptables', V('1.8.9-2', '1.8.7-1', '1.8.10-3ubuntu2'), 360000, 'administration tools for packet filtering and NAT', { d: ['libip4tc2 (= {v})', 'libxtables12 (= {v})', 'libc6'] }),
  P('libip4tc2', V('1.8.9-2', '1.8.7-1', '1.8.10-3ubuntu2'), 19000, 'netfilter libip4tc library', { d: ['libc6'] }),
  P('libxtables12', V('1.8.9-2', '1.8.7-1', '1.8.10-3ubuntu2'), 31000, 'netfilter xtables library', { d: ['libc6'] }),
  P('apparmor', V('3.0.8-3', '2.13.6-10', '4.0.1really4.0.1-0ubuntu0.24.04.3'), 616000, 'user-space parser utility for AppArmor', { d: ['libc6'] }),
  P('git', V('1:2.39.5-0+deb12u1', '1:2.30.2-1+deb11u3', '1:2.43.0-1ubuntu7.2'), 7264000, 'fast, scalable, distributed revision control system', { pocket: 'security', d: ['libc6', 'libcurl4 | libcurl3-gnutls', 'libpcre2-8-0', 'zlib1g', 'git-man (= {v})'] }),
  P('git-man', V('1:2.39.5-0+deb12u1', '1:2.30.2-1+deb11u3', '1:2.43.0-1ubuntu7.2'), 2052000, 'fast, scalable, distributed revision control system (manual pages)', { pocket: 'security' }),
  P('pigz', V('2.6-1', '2.6-1', '2.8-1'), 64000, 'Parallel Implementation of GZip', { d: ['libc6', 'zlib1g'] }),
  P('xz-utils', V('5.4.1-1', '5.2.5-2.1~deb11u1', '5.6.1+really5.4.5-1build0.1'), 472000, 'XZ-format compression utilities', { d: ['liblzma5 (>= {v})', 'libc6'] }),
  // languages and databases
  P('python3', V('3.11.2-1+b1', '3.9.2-3', '3.12.3-0ubuntu2'), 26000, 'interactive high-level object-oriented language (default python3 version)', { d: ['python3-minimal (= {v})', 'libpython3-stdlib (= {v})'] }),
  P('python3-minimal', V('3.11.2-1+b1', '3.9.2-3', '3.12.3-0ubuntu2'), 26000, 'minimal subset of the Python language (default python3 version)', { d: ['libc6', 'zlib1g'] }),
  P('libpython3-stdlib', V('3.11.2-1+b1', '3.9.2-3', '3.12.3-0ubuntu2'), 9300000, 'interactive high-level object-oriented language (default python3 version)', { d: ['libc6', 'libssl3 | libssl1.1', 'liblzma5', 'libncursesw6'] }),
  P('postgresql', V('15+248', '13+225+deb11u1', '16+257build1.1'), 10000, 'object-relational SQL database (supported version)', { d: ['postgresql-server (= {v})'] }),
  P('postgresql-server', V('15+248', '13+225+deb11u1', '16+257build1.1'), 17200000, 'object-relational SQL database, server', { d: ['postgresql-client (= {v})', 'libpq5', 'libssl3 | libssl1.1', 'ssl-cert', 'tzdata', 'adduser'] }),
  P('postgresql-client', V('15+248', '13+225+deb11u1', '16+257build1.1'), 1758000, 'front-end programs for PostgreSQL (supported version)', { d: ['libpq5', 'libc6'] }),
  P('libpq5', V('15.10-0+deb12u1', '13.18-0+deb11u1', '16.6-0ubuntu0.24.04.1'), 192000, 'PostgreSQL C client library', { pocket: 'security', d: ['libc6', 'libssl3 | libssl1.1'] }),
  P('tzdata', V('2024b-0+deb12u1', '2024a-0+deb11u1', '2024b-0ubuntu0.24.04.1'), 256000, 'time zone and daylight-saving time data', { pocket: 'updates' }),
  P('build-essential', V('12.9', '12.9', '12.10ubuntu1'), 7000, 'Informational list of build-essential packages', { d: ['libc6-dev', 'gcc', 'g++', 'make', 'dpkg-dev'] }),
  P('libc6-dev', V('2.36-9+deb12u9', '2.31-13+deb11u11', '2.39-0ubuntu8.4'), 1904000, 'GNU C Library: Development Libraries and Header Files', { pocket: 'security', d: ['libc6 (= {v})'] }),
  P('gcc', V('4:12.2.0-3', '4:10.2.1-1', '4:13.2.0-7ubuntu1'), 5200000, 'GNU C compiler', { d: ['libc6', 'libgcc-s1'] }),
  P('g++', V('4:12.2.0-3', '4:10.2.1-1', '4:13.2.0-7ubuntu1'), 11200000, 'GNU C++ compiler', { d: ['gcc (= {v})', 'libstdc++6'] }),
  P('make', V('4.3-4.1', '4.3-4.1', '4.3-4.1build2'), 396000, 'utility for directing compilation', { d: ['libc6'] }),
  P('dpkg-dev', V('1.21.22', '1.20.13', '1.22.6ubuntu6.1'), 1338000, 'Debian package development tools', { d: ['make', 'xz-utils'] }),
  // mail: two MTAs that conflict
  P('postfix', V('3.7.11-0+deb12u1', '3.5.25-0+deb11u1', '3.8.6-1build2'), 1542000, 'High-performance mail transport agent', { p: ['mail-transport-agent'], c: ['mail-transport-agent'], d: ['libc6', 'libssl3 | libssl1.1', 'ssl-cert', 'adduser'] }),
  P('exim4-daemon-light', V('4.96-15+deb12u6', '4.94.2-7+deb11u4', '4.97-4ubuntu4.3'), 600000, 'Exim MTA (v4) daemon with basic features', { p: ['mail-transport-agent'], c: ['mail-transport-agent'], d: ['libc6'] }),
  // a third-party style package built against OpenSSL 1.1: only installable on Debian 11
  P('legacy-app', V('2.4.1-1', '2.4.1-1', '2.4.1-1'), 3420000, 'example application linked against OpenSSL 1.1', { d: ['libc6', 'libssl1.1 (>= 1.1.1)'] }),
]

/** The packages of one distro: Map name -> {name, version, size, summary, ...}. */
export function indexFor(distro) {
  const suites = SUITES[distro]
  const m = new Map()
  for (const p of PACKAGES) {
    const version = p.v[distro]
    if (!version) continue
    const sub = (list) => (list || []).map((r) => r.replaceAll('{v}', version))
    m.set(p.name, {
      name: p.name, version, size: p.size, summary: p.summary, base: !!p.base,
      pocket: suites[p.pocket || 'release'],
      depends: sub(p.d), recommends: sub(p.r), provides: p.p || [], conflicts: p.c || [],
    })
  }
  return m
}

export const PRESETS = [
  { id: 'web', name: { en: 'Web server', 'zh-CN': 'Web 服务器' }, description: { en: 'nginx, a fast web server and reverse proxy', 'zh-CN': 'nginx：高性能 Web 服务器和反向代理' }, packages: ['nginx'] },
  { id: 'docker', name: { en: 'Docker', 'zh-CN': 'Docker 容器' }, description: { en: 'The Docker engine and its container runtime', 'zh-CN': 'Docker 引擎及其容器运行时' }, packages: ['docker.io'] },
  { id: 'python', name: { en: 'Python 3', 'zh-CN': 'Python 3' }, description: { en: 'The Python 3 interpreter and its standard library', 'zh-CN': 'Python 3 解释器及标准库' }, packages: ['python3'] },
  { id: 'postgresql', name: { en: 'PostgreSQL', 'zh-CN': 'PostgreSQL 数据库' }, description: { en: 'The PostgreSQL database server and client', 'zh-CN': 'PostgreSQL 数据库服务端和客户端' }, packages: ['postgresql'] },
  { id: 'admin', name: { en: 'Admin tools', 'zh-CN': '常用运维工具' }, description: { en: 'htop, jq, curl and vim', 'zh-CN': 'htop、jq、curl 和 vim' }, packages: ['htop', 'jq', 'curl', 'vim'] },
  { id: 'build', name: { en: 'Build tools', 'zh-CN': '编译工具' }, description: { en: 'gcc, g++, make and the C library headers', 'zh-CN': 'gcc、g++、make 和 C 库头文件' }, packages: ['build-essential'] },
]
