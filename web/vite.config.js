import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'
import tailwindcss from '@tailwindcss/vite'
import zlib from 'node:zlib'

// gzip and brotli copies of the scripts and stylesheets (`x.js.gz`, `x.js.br`), made once at build
// time: `opaas serve` sends one of them to a browser that accepts it (Content-Encoding). Both
// compressors are deterministic (gzip with mtime 0), so check-dist.sh still compares equal.
function precompress() {
  return {
    name: 'opaas-precompress',
    apply: 'build',
    enforce: 'post',
    generateBundle(_, bundle) {
      for (const [name, f] of Object.entries(bundle)) {
        if (!/\.(js|css|svg)$/.test(name)) continue
        const data = Buffer.from(f.type === 'chunk' ? f.code : f.source)
        if (data.length < 1024) continue
        this.emitFile({ type: 'asset', fileName: `${name}.gz`, source: zlib.gzipSync(data, { level: 9 }) })
        this.emitFile({
          type: 'asset',
          fileName: `${name}.br`,
          source: zlib.brotliCompressSync(data, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length } }),
        })
      }
    },
  }
}

// The built files (dist/) are committed and embedded into the opaas binary (rust-embed) and
// served at `/`. Keep the build deterministic (check-dist.sh compares a rebuild with dist/):
// relative asset paths, content-hashed names, no source maps, nothing fetched from the network.
export default defineConfig({
  base: './',
  plugins: [vue(), tailwindcss(), precompress()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    assetsDir: 'assets',
    reportCompressedSize: false,
    // one small app: a single JS and a single CSS file
    rollupOptions: { output: { manualChunks: undefined } },
  },
  server: {
    host: '127.0.0.1',
    // `npm run mock` serves the fake API on this port; `npm run dev` proxies to it
    proxy: { '/api': { target: process.env.OPAAS_API || 'http://127.0.0.1:5180', changeOrigin: false } },
  },
  test: {
    include: ['tests/unit/**/*.test.js'],
  },
})
