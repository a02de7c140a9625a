#!/usr/bin/env bash
# Renders Passerelle's icons from the SVG sources in icons/src with rsvg-convert
# (Debian: librsvg2-bin). The PNGs are committed; rerun this after editing a source.
#
# Tray: one 64 px PNG per state and panel theme (light panels get the deep colours, dark
# panels the bright ones); the unread badge is drawn on top at run time by the shell.
set -euo pipefail
cd "$(dirname "$0")"
command -v rsvg-convert >/dev/null || { echo "needs rsvg-convert (apt-get install librsvg2-bin)" >&2; exit 1; }
mkdir -p tray app

# state  light-fill  dark-fill  overlay
states=(
  "logged_out #6b7280 #9ca3af none"
  "up_to_date #0f766e #2dd4bf check"
  "syncing    #1d4ed8 #60a5fa sync"
  "paused     #b45309 #fbbf24 pause"
  "error      #b91c1c #f87171 error"
  "offline    #4b5563 #9ca3af offline"
  "attention  #b45309 #fbbf24 clock"
)

overlay() {
  case $1 in
    none) ;;
    check) echo '<circle cx="47" cy="47" r="15" fill="#fff"/><path d="M40 47.5l5 5 9-10" stroke="FILL" stroke-width="4.5" fill="none" stroke-linecap="round" stroke-linejoin="round"/>' ;;
    sync) echo '<circle cx="47" cy="47" r="15" fill="#fff"/><path d="M39 45a8.5 8.5 0 0 1 15.5-3M55 49a8.5 8.5 0 0 1-15.5 3" stroke="FILL" stroke-width="4" fill="none" stroke-linecap="round"/><path d="M56 36v7h-7M38 58v-7h7" stroke="FILL" stroke-width="4" fill="none" stroke-linecap="round" stroke-linejoin="round"/>' ;;
    pause) echo '<circle cx="47" cy="47" r="15" fill="#fff"/><rect x="41" y="40" width="4.5" height="14" rx="1.5" fill="FILL"/><rect x="48.5" y="40" width="4.5" height="14" rx="1.5" fill="FILL"/>' ;;
    error) echo '<circle cx="47" cy="47" r="15" fill="#fff"/><rect x="44.75" y="38" width="4.5" height="11" rx="2" fill="FILL"/><circle cx="47" cy="54.5" r="2.6" fill="FILL"/>' ;;
    clock) echo '<circle cx="47" cy="47" r="15" fill="#fff"/><circle cx="47" cy="47" r="9.5" stroke="FILL" stroke-width="3.5" fill="none"/><path d="M47 41.5V47l4 3" stroke="FILL" stroke-width="3.5" fill="none" stroke-linecap="round" stroke-linejoin="round"/>' ;;
    offline) echo '<circle cx="47" cy="47" r="15" fill="#fff"/><path d="M40 40l14 14M54 40L40 54" stroke="FILL" stroke-width="4.5" stroke-linecap="round"/>' ;;
  esac
}

# The mark: a footbridge (une passerelle), an arch under a deck, on a rounded square.
mark() { # fill, hollow(0/1)
  local fill=$1 hollow=$2 bg glyph
  if [[ $hollow == 1 ]]; then
    bg="<rect x=\"4\" y=\"4\" width=\"56\" height=\"56\" rx=\"14\" fill=\"none\" stroke=\"$fill\" stroke-width=\"5\"/>"
    glyph=$fill
  else
    bg="<rect x=\"2\" y=\"2\" width=\"60\" height=\"60\" rx=\"15\" fill=\"$fill\"/>"
    glyph="#fff"
  fi
  echo "$bg<path d=\"M10 34h44\" stroke=\"$glyph\" stroke-width=\"5.5\" stroke-linecap=\"round\"/><path d=\"M14 48c4-11 12-16 18-16s14 5 18 16\" stroke=\"$glyph\" stroke-width=\"5.5\" fill=\"none\" stroke-linecap=\"round\"/><path d=\"M22 34v-8M32 34v-10M42 34v-8\" stroke=\"$glyph\" stroke-width=\"4\" stroke-linecap=\"round\"/>"
}

for row in "${states[@]}"; do
  read -r name light dark over <<<"$row"
  for theme in light dark; do
    fill=$light; [[ $theme == dark ]] && fill=$dark
    hollow=0; [[ $name == logged_out ]] && hollow=1
    svg="src/tray-$name-$theme.svg"
    {
      echo '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
      mark "$fill" "$hollow"
      overlay "$over" | sed "s/FILL/$fill/g"
      echo '</svg>'
    } >"$svg"
    rsvg-convert -w 64 -h 64 "$svg" -o "tray/$name-$theme.png"
  done
done

# The application icon (menus, .deb, .msi, .dmg, window icon).
{
  echo '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
  mark "#0f766e" 0
  echo '</svg>'
} >src/app.svg
for size in 32 128 256 512; do rsvg-convert -w $size -h $size src/app.svg -o "app/$size.png"; done
mv app/256.png app/128x128@2x.png; mv app/128.png app/128x128.png; mv app/32.png app/32x32.png; mv app/512.png app/icon.png
echo "icons written" >&2
